"""EMBEDDING_BACKEND=auto on CPU: measure torch and ONNX once, keep the fastest whose vectors agree with fp32.

Agreement is the cosine between each candidate's vectors and fp32's (ONNX fp32, equal to torch fp32 to ~1e-6)
on `precision.CALIBRATION_TEXTS` and the reranker's calibration passages (real chunk lengths, so the speed
measured is the real one); a candidate must reach MIN_MEAN_COSINE on average and MIN_COSINE on every
text. On the Python docs' chunks ONNX int8 (sensitive layers in fp32) gave mean cosine 0.997 (min 0.993) and
quantising every layer 0.994 (min 0.988), so int8 passes and int8-full does not. The decision is stored in the
cache directory, keyed by the model files and the CPU, so it is measured once per model and machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crawlrag.embeddings.base import Embedder, EmbedderWrapper, EmbeddingError
from crawlrag.embeddings.precision import CALIBRATION_TEXTS
from crawlrag.rerank.calibration import PASSAGES

log = logging.getLogger(__name__)

MIN_MEAN_COSINE = 0.995
MIN_COSINE = 0.99


@dataclass(frozen=True)
class EmbedTrial:
    label: str  # "torch", "onnx int8", "onnx float32"
    texts_per_s: float
    mean_cosine: float
    min_cosine: float
    error: str | None = None


def choose_embedder(trials: Sequence[EmbedTrial]) -> EmbedTrial | None:
    """The fastest trial whose vectors agree with fp32, or None when none does."""
    fit = [t for t in trials if t.error is None and t.mean_cosine >= MIN_MEAN_COSINE and t.min_cosine >= MIN_COSINE]
    return max(fit, key=lambda t: t.texts_per_s) if fit else None


Candidate = tuple[str, Callable[[], Embedder]]


def measure(
    candidates: Sequence[Candidate], reference: Embedder, texts: Sequence[str], rounds: int = 2
) -> list[EmbedTrial]:
    expected = reference.embed_documents(texts)
    trials = []
    for label, build in candidates:
        try:
            embedder = build()
            # Measured in this process: worker processes starting mid-measurement would take its CPU (and,
            # dropped with the candidate, idle on with a model loaded); the winner is built anew with its own.
            embedder.close()
            vectors = embedder.embed_documents(texts)  # also the warm-up
            best = float("inf")
            for _ in range(rounds):  # the best round: outside load only ever slows a round down
                started = time.perf_counter()
                embedder.embed_documents(texts)
                best = min(best, time.perf_counter() - started)
        except Exception as exc:  # a candidate that cannot load or run is skipped, never fatal
            log.info("embedder autotune: %s failed: %s", label, exc)
            trials.append(EmbedTrial(label, 0.0, 0.0, 0.0, f"failed: {exc}"))
            continue
        cosines = np.sum(expected * vectors, axis=1)
        trials.append(EmbedTrial(label, len(texts) / max(best, 1e-9), float(cosines.mean()), float(cosines.min())))
    return trials


class AutoEmbedder(EmbedderWrapper):
    """Picks among `candidates` on first load (or reuses the stored decision), then delegates to the winner."""

    def __init__(
        self,
        model_name: str,
        candidates: Sequence[Candidate],
        reference: Callable[[], Embedder],
        *,
        fallback: str,
        model_dir: Path | None,
        cache_dir: Path | None,
        texts: Sequence[str] = (*CALIBRATION_TEXTS, *PASSAGES),
    ) -> None:
        self._model_name = model_name
        self._candidates = dict(candidates)
        self._reference = reference
        self._fallback = fallback
        self._model_dir = model_dir
        self._cache_dir = cache_dir
        self._texts = list(texts)
        self._lock = threading.Lock()
        self._inner: Embedder | None = None
        self.trials: list[EmbedTrial] = []
        self.reason: str | None = None

    @property
    def inner(self) -> Embedder:
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = self._pick()
        return self._inner

    def _pick(self) -> Embedder:
        cache = self._cache_file()
        trials = _read(cache)
        if trials is None:
            try:
                reference = self._reference()
                try:
                    trials = measure(list(self._candidates.items()), reference, self._texts)
                finally:
                    reference.close()
            except Exception as exc:  # the reference itself failed: the static choice, which reports its own error
                log.warning("embedder autotune failed, using %s: %s", self._fallback, exc)
                self.reason = f"autotune failed ({exc}); {self._fallback}"
                return self._candidates[self._fallback]()
            _write(cache, trials)
        self.trials = trials
        best = choose_embedder(trials)
        label = best.label if best is not None and best.label in self._candidates else self._fallback
        summary = "; ".join(
            f"{t.label}: {t.error}"
            if t.error
            else f"{t.label}: {t.texts_per_s:.1f} texts/s, cosine {t.mean_cosine:.4f} (min {t.min_cosine:.4f})"
            for t in trials
        )
        self.reason = f"auto chose {label} (fastest agreeing with float32): {summary}"
        log.info("embedder: %s", self.reason)
        return self._candidates[label]()

    def _cache_file(self) -> Path | None:
        if self._cache_dir is None or self._model_dir is None or not self._model_dir.is_dir():
            return None
        stamp = ";".join(
            f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
            for f in sorted(self._model_dir.rglob("*"))
            if f.is_file()
        )
        key = json.dumps(
            [str(self._model_dir), stamp, sorted(self._candidates), platform.machine(), platform.processor(),
             os.cpu_count(), len(self._texts)]
        )  # fmt: skip
        return self._cache_dir / "autotune" / f"embed-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"

    @property
    def model_name(self) -> str:
        return self._model_name

    def status(self) -> dict[str, Any]:
        if self._inner is None:
            return {"provider": "local", "model": self._model_name, "loaded": False, "backend": "auto"}
        return self._inner.status() | {"backend_reason": self.reason}

    def close(self) -> None:
        if self._inner is not None:  # closing must not run the autotune that choosing a backend would
            self._inner.close()


def _describe(trial: EmbedTrial) -> str:
    return (
        f"{trial.label}: {trial.texts_per_s:.1f} texts/s, cosine {trial.mean_cosine:.4f} (min {trial.min_cosine:.4f})"
    )


def _read(cache: Path | None) -> list[EmbedTrial] | None:
    if cache is None or not cache.is_file():
        return None
    try:
        return [EmbedTrial(**item) for item in json.loads(cache.read_text())]
    except (OSError, ValueError, TypeError):
        return None


def _write(cache: Path | None, trials: list[EmbedTrial]) -> None:
    if cache is None:
        return
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([asdict(t) for t in trials], indent=2))
        os.replace(tmp, cache)
    except OSError as exc:
        log.info("could not store the embedder autotune result: %s", exc)


def raise_if_missing(model_dir: Path | None, model_name: str) -> Path:
    if model_dir is None or not model_dir.is_dir():
        raise EmbeddingError(f"the onnx embedder needs a local model folder; {model_name!r} is not one")
    return model_dir
