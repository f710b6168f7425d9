"""`auto` on CPU: measured speed and agreement choose the backend; injected measurements and fake backends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from rerank_fakes import FakeBackend, FakeRuntime, OnlineHub

from crawlrag.config import Settings
from crawlrag.rerank import LocalReranker
from crawlrag.rerank.autotune import MIN_SPEARMAN, Autotuner, Trial, choose, spearman
from crawlrag.rerank.backends import BackendPlan, ScoringBackend
from crawlrag.rerank.calibration import calibration_pairs
from crawlrag.rerank.device import CPU
from crawlrag.rerank.hub import ModelSource

SOURCE = ModelSource("primary", "primary", local=False)


def test_choose_fastest_that_keeps_the_ranking() -> None:
    trials = [
        Trial("onnx int8-full", 50.0, 0.985),  # fastest, but changes the ranking
        Trial("onnx int8", 40.0, 0.997),
        Trial("torch bfloat16", 35.0, 0.9997),
        Trial("onnx float32", 20.0, 1.0),
        Trial("broken", 99.0, 1.0, error="failed: boom"),
    ]
    assert choose(trials).label == "onnx int8"  # type: ignore[union-attr]
    assert choose(trials, min_spearman=0.999).label == "torch bfloat16"  # type: ignore[union-attr]
    assert choose([Trial("a", 1.0, 0.5)]) is None
    assert choose([Trial("a", 1.0, 0.993)]) is None  # calibration pairs must agree with a margin over 0.99
    assert MIN_SPEARMAN == 0.995


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 1, 1]) == 1.0
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0


class PlanLoader:
    """One fake backend per plan label: scores are the reference's, plus noise that scrambles some ranks."""

    def __init__(self, noise: dict[str, float], delays: dict[str, float], fail: Sequence[str] = ()) -> None:
        self.noise, self.delays, self.fail = noise, delays, set(fail)
        self.loaded: list[tuple[str, int | None]] = []

    def __call__(self, source: ModelSource, plan: BackendPlan) -> ScoringBackend:
        self.loaded.append((plan.label, plan.max_length))
        if plan.label in self.fail:
            raise RuntimeError("no kernel")
        amount = self.noise.get(plan.label, 0.0)

        def score(query: str, passage: str) -> float:
            return float(len(passage) % 97) + amount * float(hash(passage) % 7)

        return FakeBackend(score, delay=self.delays.get(plan.label, 0.0))


def candidates(*labels: str) -> BackendPlan:
    tried = tuple(BackendPlan(*label.split(), device=CPU) for label in labels)  # type: ignore[misc]
    return BackendPlan("onnx", "int8", CPU, ("a note",), candidates=tried)


def tuner(loader: PlanLoader, cache_dir: Path | None = None) -> Autotuner:
    return Autotuner(loader, max_length=512, batch_size=32, batch_tokens=4096, cache_dir=cache_dir, rounds=1)


def test_tune_picks_the_fastest_agreeing_candidate(tmp_path: Path) -> None:
    loader = PlanLoader(
        noise={"onnx int8-full": 40.0, "onnx int8": 0.0},
        delays={"onnx float32": 0.02, "torch bfloat16": 0.01, "onnx int8": 0.002},
    )
    plan = candidates("onnx int8", "onnx int8-full", "onnx float32", "torch bfloat16")
    chosen = tuner(loader, tmp_path).tune(SOURCE, plan)
    assert chosen.label == "onnx int8" and not chosen.candidates
    assert chosen.notes[0] == "a note" and "auto chose onnx int8" in chosen.notes[1]
    assert "onnx int8-full" in chosen.notes[1]  # every measurement is reported
    assert loader.loaded[0] == ("onnx float32", 512)  # the reference: fp32 at 512 tokens
    # Stored: a second start measures nothing.
    again = PlanLoader({}, {})
    assert tuner(again, tmp_path).tune(SOURCE, plan).label == "onnx int8"
    assert again.loaded == []


class Burst:
    """Outside load: after the first `after` batches, the next `batches` batches run slowly, whoever runs them."""

    def __init__(self, after: int, batches: int) -> None:
        self.after, self.batches = after, batches

    def wait(self) -> None:
        if self.after > 0:
            self.after -= 1
        elif self.batches > 0:
            self.batches -= 1
            threading.Event().wait(0.05)


def test_tune_interleaves_passes_so_a_burst_of_load_does_not_decide() -> None:
    pairs = [("q", "p" * n) for n in range(1, 9)]  # one batch per pass
    # After the reference and int8-full's warm-up pass, a burst as long as all of one candidate's timed passes.
    # Timed one candidate after another, it would fall on int8-full's three timed passes alone.
    burst = Burst(after=2, batches=3)

    class Loaded(PlanLoader):
        def __call__(self, source: ModelSource, plan: BackendPlan) -> ScoringBackend:
            backend = super().__call__(source, plan)
            inner = backend.predict

            def predict(batch: Sequence[tuple[str, str]]) -> list[float]:
                burst.wait()
                return inner(batch)

            backend.predict = predict  # type: ignore[method-assign]
            return backend

    loader = Loaded({}, {"onnx int8": 0.004, "onnx int8-full": 0.002})  # int8-full is truly faster
    tuned = Autotuner(loader, max_length=512, batch_size=8, batch_tokens=4096, cache_dir=None, pairs=pairs, rounds=3)
    assert tuned.tune(SOURCE, candidates("onnx int8-full", "onnx int8")).label == "onnx int8-full"


def test_tune_keeps_static_choice_without_spread_or_agreement() -> None:
    flat = PlanLoader({}, {})
    flat_tuner = Autotuner(
        flat, max_length=512, batch_size=8, batch_tokens=4096, cache_dir=None, pairs=[("q", "same")] * 6
    )
    plan = candidates("onnx int8", "onnx float32")
    chosen = flat_tuner.tune(SOURCE, plan)
    assert chosen.label == "onnx int8" and "no spread" in chosen.notes[-1]

    failing = PlanLoader({"onnx int8": 500.0}, {}, fail=["torch bfloat16"])
    chosen = tuner(failing).tune(SOURCE, candidates("onnx int8", "torch bfloat16"))
    assert chosen.label == "onnx int8" and "no candidate kept the ranking" in chosen.notes[-1]
    assert "torch bfloat16: failed: no kernel" in chosen.notes[-1]


def test_plan_without_candidates_is_untouched() -> None:
    plan = BackendPlan("torch", "bfloat16", CPU)
    assert tuner(PlanLoader({}, {})).tune(SOURCE, plan) is plan


def test_calibration_pairs_are_real_length() -> None:
    pairs = calibration_pairs()
    assert len(pairs) >= 24 and all(len(passage) > 300 for _, passage in pairs)


def test_reranker_auto_on_cpu_measures_then_serves_the_choice(
    rerank_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    loader = PlanLoader({"onnx int8-full": 40.0}, {"onnx float32": 0.01})
    reranker = LocalReranker(
        rerank_settings(reranking_backend="auto", reranking_health_check_enabled=False, reranking_warmup_samples=0),
        device_runtime=FakeRuntime(),
        backend_loader=loader,
        hub_probe=OnlineHub(),
        cache_dir=tmp_path,
    )
    try:
        reranker.start()
        assert reranker.state.wait_settled_sync(30)
        status = reranker.status()
        assert status["state"] == "ready" and (status["backend"], status["precision"]) == ("onnx", "int8")
        assert any("auto chose onnx int8" in note for note in status["notes"])
        assert list((tmp_path / "autotune").glob("*.json"))
        assert reranker.rerank_sync("q", ["ab", "abc"]) == [2.0, 3.0]
    finally:
        reranker.close()


def test_reranker_autotune_crash_keeps_static_choice(rerank_settings: Callable[..., Settings], tmp_path: Path) -> None:
    class Crashing(PlanLoader):
        def __call__(self, source: ModelSource, plan: BackendPlan) -> ScoringBackend:
            if plan.max_length == 512:
                raise RuntimeError("reference export failed")
            return super().__call__(source, plan)

    reranker = LocalReranker(
        rerank_settings(reranking_backend="auto", reranking_health_check_enabled=False, reranking_warmup_samples=0),
        device_runtime=FakeRuntime(),
        backend_loader=Crashing({}, {}),
        hub_probe=OnlineHub(),
        cache_dir=tmp_path,
    )
    try:
        reranker.start()
        assert reranker.state.wait_settled_sync(30)
        status = reranker.status()
        assert status["state"] == "ready" and status["precision"] == "int8"
        assert any("autotune failed" in note for note in status["notes"])
    finally:
        reranker.close()
    assert threading.active_count() >= 1
