"""`auto` on CPU: measure each candidate's speed and ranking agreement, keep the fastest that keeps the ranking.

Agreement is Spearman's rank correlation (≥ MIN_SPEARMAN) with float32 at 512 tokens (ONNX fp32, which
equals torch fp32 to ~1e-6, so torch need not be imported) on `calibration.py`'s pairs. Speed is pairs per
second on the same pairs in token-budget batches, as the worker runs them: the best of passes interleaved
across the candidates. The decision is stored in the cache directory, keyed by the model, the candidates, the
max length and the CPU, so it is measured once per model and machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crawlrag.rerank.backends import BackendLoader, BackendPlan, ScoringBackend
from crawlrag.rerank.batching import plan_batches
from crawlrag.rerank.calibration import calibration_pairs
from crawlrag.rerank.hub import ModelSource

log = logging.getLogger(__name__)

# The target is Spearman ≥ 0.99 on real candidates, but the calibration pairs (a few clearly relevant passages
# among unrelated ones) are easier to keep in order: on bench/rerank.py int8-full scored 0.9938 on them and
# 0.989 on the benchmark's 50 lexical candidates, int8 0.9985 and 0.992. Asking 0.995 of them keeps the margin.
MIN_SPEARMAN = 0.995
REFERENCE_LENGTH = 512
# Below this spread the reference scores cannot tell passages apart (e.g. an untrained head), and no ranking
# comparison means anything: the static choice is kept.
MIN_SPREAD = 1e-3


@dataclass(frozen=True)
class Trial:
    label: str  # "onnx int8", "torch bfloat16", ...
    pairs_per_s: float
    spearman: float
    error: str | None = None


def choose(trials: Sequence[Trial], min_spearman: float = MIN_SPEARMAN) -> Trial | None:
    """The fastest trial whose ranking agrees with the reference, or None when none does."""
    fit = [t for t in trials if t.error is None and t.spearman >= min_spearman]
    return max(fit, key=lambda t: t.pairs_per_s) if fit else None


def ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their average rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    if len(set(ra)) < 2 or len(set(rb)) < 2:
        return 1.0 if ra == rb else 0.0
    return statistics.correlation(ra, rb)


def run_batched(backend: ScoringBackend, pairs: Sequence[tuple[str, str]], batch_size: int, tokens: int) -> list[float]:
    """Scores of `pairs` in the worker's token-budget batches."""
    scores = [0.0] * len(pairs)
    for batch in plan_batches(backend.token_lengths(pairs), max_pairs=batch_size, max_tokens=tokens):
        for index, score in zip(batch, backend.predict([pairs[i] for i in batch]), strict=True):
            scores[index] = score
    return scores


class Autotuner:
    """Measures a plan's candidates with `loader`; `cache_dir=None` measures every time (tests)."""

    def __init__(
        self,
        loader: BackendLoader,
        *,
        max_length: int,
        batch_size: int,
        batch_tokens: int,
        cache_dir: Path | None,
        pairs: Sequence[tuple[str, str]] | None = None,
        rounds: int = 5,
    ) -> None:
        self._loader = loader
        self._max_length = max_length
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        self._cache_dir = cache_dir
        self._pairs = list(pairs) if pairs is not None else calibration_pairs()
        self._rounds = rounds

    def tune(self, source: ModelSource, plan: BackendPlan) -> BackendPlan:
        """The candidate `choose` picks, or `plan` itself (with a note saying why) when none can be picked."""
        if not plan.candidates:
            return plan
        by_label = {candidate.label: candidate for candidate in plan.candidates}
        cache = self._cache_file(source, plan)
        trials = self._cached(cache)
        if trials is None:
            trials = self._measure(source, plan)
            if trials is not None and cache is not None:
                self._store(cache, trials)
        if trials is None:
            return self._static(plan, "the reference scores have no spread; kept the static choice")
        summary = "; ".join(
            f"{t.label}: {t.error}" if t.error else f"{t.label}: {t.pairs_per_s:.1f} pairs/s, Spearman {t.spearman:.4f}"
            for t in trials
        )
        best = choose(trials)
        if best is None or best.label not in by_label:
            return self._static(plan, f"no candidate kept the ranking ({summary}); kept the static choice")
        note = f"auto chose {best.label} (fastest with Spearman ≥ {MIN_SPEARMAN} vs float32/512): {summary}"
        return BackendPlan(
            by_label[best.label].backend,
            by_label[best.label].precision,
            plan.device,
            (*plan.notes, note),
        )

    @staticmethod
    def _static(plan: BackendPlan, note: str) -> BackendPlan:
        return BackendPlan(plan.backend, plan.precision, plan.device, (*plan.notes, note))

    def _measure(self, source: ModelSource, plan: BackendPlan) -> list[Trial] | None:
        onnx = any(candidate.backend == "onnx" for candidate in plan.candidates)
        reference_plan = BackendPlan("onnx" if onnx else "torch", "float32", plan.device, max_length=REFERENCE_LENGTH)
        reference = self._loader(source, reference_plan)
        try:
            expected = run_batched(reference, self._pairs, self._batch_size, self._batch_tokens)
        finally:
            reference.close()
        if statistics.pstdev(expected) < MIN_SPREAD:
            return None
        loaded: dict[str, ScoringBackend] = {}
        failed: dict[str, str] = {}
        scores: dict[str, list[float]] = {}
        try:
            for candidate in plan.candidates:
                try:
                    backend = self._loader(source, candidate)
                    loaded[candidate.label] = backend
                    scores[candidate.label] = run_batched(backend, self._pairs, self._batch_size, self._batch_tokens)
                except Exception as exc:  # a candidate that cannot load or run is skipped, never fatal
                    log.info("reranker autotune: %s failed: %s", candidate.label, exc)
                    failed[candidate.label] = f"failed: {exc}"
                    broken = loaded.pop(candidate.label, None)
                    if broken is not None:
                        broken.close()
            best = self._best_times(loaded)
        finally:
            for backend in loaded.values():
                backend.close()
        return [
            Trial(c.label, 0.0, 0.0, failed[c.label])
            if c.label in failed
            else Trial(c.label, len(self._pairs) / max(best[c.label], 1e-9), spearman(scores[c.label], expected))
            for c in plan.candidates
        ]

    def _best_times(self, backends: dict[str, ScoringBackend]) -> dict[str, float]:
        """Each backend's best pass over the pairs, the passes interleaved across backends.

        Interleaving puts a burst of outside load on every candidate alike instead of on whichever was being
        timed then (timed one after another, two candidates 20% apart came out equal or swapped), and the best
        pass is kept because load only ever slows a pass down.
        """
        best = dict.fromkeys(backends, float("inf"))
        for _ in range(self._rounds):
            for label, backend in backends.items():
                started = time.perf_counter()
                run_batched(backend, self._pairs, self._batch_size, self._batch_tokens)
                best[label] = min(best[label], time.perf_counter() - started)
        return best

    def _cache_file(self, source: ModelSource, plan: BackendPlan) -> Path | None:
        if self._cache_dir is None:
            return None
        model = Path(source.location)
        stamp = ""
        if model.is_dir():
            stamp = ";".join(
                f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(model.iterdir()) if f.is_file()
            )
        key = json.dumps(
            {
                "model": source.location,
                "files": stamp,
                "candidates": [c.label for c in plan.candidates],
                "max_length": self._max_length,
                "batch": [self._batch_size, self._batch_tokens],
                "cpu": [platform.machine(), platform.processor(), os.cpu_count()],
                "pairs": len(self._pairs),
                "onnx_graph": "optimised-1",  # measured on onnx_optimize.py's graph: a new recipe measures anew
                "timing": "interleaved-1",  # results of the earlier, sequential timing are measured again
            },
            sort_keys=True,
        )
        return self._cache_dir / "autotune" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"

    @staticmethod
    def _cached(cache: Path | None) -> list[Trial] | None:
        if cache is None or not cache.is_file():
            return None
        try:
            return [Trial(**item) for item in json.loads(cache.read_text())["trials"]]
        except (OSError, ValueError, TypeError, KeyError):
            return None  # unreadable: measure again

    @staticmethod
    def _store(cache: Path, trials: list[Trial]) -> None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"trials": [t.__dict__ for t in trials]}, indent=2))
            os.replace(tmp, cache)
        except OSError as exc:  # a read-only cache only costs a new measurement next start
            log.info("could not store the reranker autotune result: %s", exc)
