"""The state machine end to end through LocalReranker: every state, retries, fallbacks, validation, warm-up."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from rerank_fakes import FakeBackend, FakeLoader, FakeRuntime, OnlineHub

from crawlrag.config import Settings
from crawlrag.rerank import LocalReranker, RerankState, RerankUnavailable, build_reranker
from crawlrag.rerank.errors import ModelLoadError

S = RerankState


def states(reranker: LocalReranker) -> list[RerankState]:
    seen = [state for state, _ in reranker.state.history]
    return [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]


async def test_disabled(rerank_settings: Callable[..., Settings]) -> None:
    settings = rerank_settings(use_reranking=False)
    assert build_reranker(settings) is None
    reranker = LocalReranker(settings)
    reranker.start()
    assert not reranker.enabled
    assert await reranker.wait_ready(1) is False
    assert reranker.status()["state"] == "disabled"
    with pytest.raises(RerankUnavailable, match="disabled"):
        await reranker.rerank("q", ["p"])


async def test_build_reranker_returns_local(rerank_settings: Callable[..., Settings]) -> None:
    reranker = build_reranker(rerank_settings())
    assert isinstance(reranker, LocalReranker)
    assert reranker.status()["state"] == "not_started"
    with pytest.raises(RerankUnavailable, match="not been started"):
        await reranker.rerank("q", ["p"])
    reranker.close()


async def test_ready_walks_every_state(make_reranker: Callable[..., LocalReranker]) -> None:
    backend = FakeBackend()
    reranker = make_reranker(FakeLoader({"primary": [backend]}))
    reranker.start()
    reranker.start()  # idempotent
    assert await reranker.wait_ready(5)
    assert states(reranker) == [S.NOT_STARTED, S.LOADING, S.VALIDATING, S.WARMING, S.READY]
    status = reranker.status()
    assert status["state"] == "ready" and status["reason"] is None and status["validated"] is True
    assert status["load_count"] == 1 and status["fallback_used"] is False
    assert status["validation"]["relevant_ranked_first"] is True  # the fake scores longer passages higher
    # 1 validation call + RERANKING_WARMUP_SAMPLES warm-up calls, nothing else.
    assert len(backend.calls) == 1 + 2
    assert all(len(pairs) == 8 for pairs in backend.calls[1:])  # warm-up batch: min(batch size, 16)
    assert all(len(p) >= 300 for _, p in backend.calls[1])  # realistic passage length
    assert await reranker.rerank("q", ["aa", "a", "aaa"]) == [2.0, 1.0, 3.0]


@pytest.mark.parametrize("samples", [0, 5])
async def test_warmup_count(make_reranker: Callable[..., LocalReranker], samples: int) -> None:
    backend = FakeBackend()
    reranker = make_reranker(FakeLoader({"primary": [backend]}), reranking_warmup_samples=samples)
    assert await reranker.wait_ready(5)
    assert len(backend.calls) == 1 + samples
    assert reranker.status()["warmup_seconds"] >= 0


async def test_health_check_disabled_skips_validating(make_reranker: Callable[..., LocalReranker]) -> None:
    backend = FakeBackend()
    reranker = make_reranker(FakeLoader({"primary": [backend]}), reranking_health_check_enabled=False)
    assert await reranker.wait_ready(5)
    assert S.VALIDATING not in states(reranker)
    assert reranker.status()["validated"] is None and len(backend.calls) == 2


async def test_transient_errors_are_retried(make_reranker: Callable[..., LocalReranker]) -> None:
    loader = FakeLoader({"primary": [ConnectionError("reset"), TimeoutError("slow"), FakeBackend()]})
    reranker = make_reranker(loader)
    assert await reranker.wait_ready(5)
    assert loader.names() == ["primary"] * 3
    assert reranker.status()["state"] == "ready"


async def test_retries_are_bounded(make_reranker: Callable[..., LocalReranker]) -> None:
    loader = FakeLoader({"primary": [ConnectionError("reset")], "backup": [FakeBackend()]})
    reranker = make_reranker(loader, reranking_load_retries=1, reranking_fallback_models=["backup"])
    assert await reranker.wait_ready(5)
    assert loader.names() == ["primary", "primary", "backup"]


async def test_permanent_error_is_not_retried_and_falls_back(make_reranker: Callable[..., LocalReranker]) -> None:
    loader = FakeLoader(
        {
            "primary": [OSError("no such file: pytorch_model.bin")],
            "broken": [ValueError("bad config")],
            "backup": [FakeBackend()],
        }
    )
    reranker = make_reranker(loader, reranking_fallback_models=["broken", "primary", "backup"])
    assert await reranker.wait_ready(5)
    assert loader.names() == ["primary", "broken", "backup"]  # duplicates of the primary are dropped
    status = reranker.status()
    assert status["state"] == "degraded" and status["fallback_used"] is True and status["model"] == "backup"
    assert "primary: no such file" in status["reason"] and "broken: bad config" in status["reason"]
    assert states(reranker)[-1] is S.DEGRADED
    assert await reranker.rerank("q", ["abc"]) == [3.0]


@pytest.mark.parametrize(
    ("bad_score", "message"),
    [(lambda q, p: math.nan, "non-finite"), (lambda q, p: "high", "non-finite")],
)
async def test_validation_failure_falls_back(
    make_reranker: Callable[..., LocalReranker], bad_score: Callable[[str, str], Any], message: str
) -> None:
    broken = FakeBackend(bad_score)
    loader = FakeLoader({"primary": [broken], "backup": [FakeBackend()]})
    reranker = make_reranker(loader, reranking_fallback_models=["backup"])
    assert await reranker.wait_ready(5)
    assert broken.closed  # the rejected model was released
    assert states(reranker) == [
        S.NOT_STARTED, S.LOADING, S.VALIDATING, S.LOADING, S.VALIDATING, S.WARMING, S.DEGRADED
    ]  # fmt: skip
    assert message in reranker.status()["reason"]
    assert reranker.status()["load_count"] == 2


class WrongCount(FakeBackend):
    def predict(self, pairs: Any) -> list[float]:
        return [1.0]


class Exploding(FakeBackend):
    def predict(self, pairs: Any) -> list[float]:
        raise RuntimeError("kernel crashed")


@pytest.mark.parametrize(
    ("backend", "message"), [(WrongCount(), "1 scores for 2 pairs"), (Exploding(), "kernel crashed")]
)
async def test_validation_failure_without_fallback_fails(
    make_reranker: Callable[..., LocalReranker], backend: FakeBackend, message: str
) -> None:
    reranker = make_reranker(FakeLoader({"primary": [backend]}))
    assert await reranker.wait_ready(5) is False
    status = reranker.status()
    assert status["state"] == "failed" and message in status["reason"] and status["validated"] is False
    with pytest.raises(RerankUnavailable, match="failed to load"):
        await reranker.rerank("q", ["p"])


async def test_warmup_failure_moves_to_next_model(make_reranker: Callable[..., LocalReranker]) -> None:
    flaky = FakeBackend(fail_on="asyncio")  # passes the health check, breaks on warm-up passages
    reranker = make_reranker(
        FakeLoader({"primary": [flaky], "backup": [FakeBackend()]}), reranking_fallback_models=["backup"]
    )
    assert await reranker.wait_ready(5)
    assert S.WARMING in states(reranker) and reranker.status()["model"] == "backup"


async def test_load_never_raises(make_reranker: Callable[..., LocalReranker]) -> None:
    reranker = make_reranker(FakeLoader({"primary": [KeyboardInterrupt()]}))
    reranker.start()
    reranker._thread.join(5)  # type: ignore[union-attr]
    assert reranker.status()["state"] == "failed"  # the loader thread ended cleanly, the server goes on


async def test_unexpected_lifecycle_error_becomes_failed(
    make_reranker: Callable[..., LocalReranker], monkeypatch: pytest.MonkeyPatch
) -> None:
    reranker = make_reranker(FakeLoader({"primary": [FakeBackend()]}))
    monkeypatch.setattr(reranker.metrics, "set_rss", lambda *a: 1 / 0)
    assert await reranker.wait_ready(5) is False
    assert "unexpected error" in reranker.status()["reason"]


async def test_gpu_probe_error_falls_back_to_cpu(make_reranker: Callable[..., LocalReranker]) -> None:
    class NoCuda(FakeRuntime):
        def cuda_device_count(self) -> int:
            raise AssertionError("driver crashed")

    reranker = make_reranker(FakeLoader({"primary": [FakeBackend()]}), runtime=NoCuda(), gpu_preference="cuda")
    assert await reranker.wait_ready(5)  # a GPU probe error falls back to CPU
    assert "driver crashed" in reranker.status()["device_info"]["fallback_reason"]


async def test_gpu_out_of_memory_moves_to_cpu(make_reranker: Callable[..., LocalReranker]) -> None:
    loader = FakeLoader({"primary": [RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), FakeBackend()]})
    runtime = FakeRuntime(cuda=1, cpu_bf16=True)
    reranker = make_reranker(loader, runtime=runtime, gpu_preference="cuda", gpu_precision="float16")
    assert await reranker.wait_ready(5)
    first, second = (plan for _, plan in loader.calls)
    assert first.device.device == "cuda:0" and first.precision == "float16"
    assert second.device.device == "cpu" and second.precision == "bfloat16"
    status = reranker.status()
    assert status["state"] == "ready" and status["device"] == "cpu"
    assert any("out of memory" in note for note in status["notes"])
    assert "cuda:0" in runtime.emptied


async def test_gpu_out_of_memory_then_cpu_failure(make_reranker: Callable[..., LocalReranker]) -> None:
    loader = FakeLoader({"primary": [RuntimeError("CUDA out of memory"), ValueError("corrupt weights")]})
    reranker = make_reranker(loader, runtime=FakeRuntime(cuda=1), gpu_preference="cuda")
    assert await reranker.wait_ready(5) is False
    assert "corrupt weights (on CPU after CUDA out of memory)" in reranker.status()["reason"]


async def test_close_while_loading(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()

    class SlowLoader(FakeLoader):
        def __call__(self, source: Any, plan: Any) -> Any:
            gate.wait(5)
            return super().__call__(source, plan)

    backend = FakeBackend()
    reranker = make_reranker(SlowLoader({"primary": [backend]}))
    reranker.start()
    assert reranker.status()["state"] == "loading"
    reranker.close()
    gate.set()
    reranker._thread.join(5)  # type: ignore[union-attr]
    assert reranker.status()["state"] == "disabled" and "closed" in reranker.status()["reason"]
    assert await reranker.wait_ready(0.1) is False
    with pytest.raises(RerankUnavailable, match="closed"):
        await reranker.rerank("q", ["p"])


async def test_close_during_retry_backoff(rerank_settings: Callable[..., Settings]) -> None:
    loader = FakeLoader({"primary": [ConnectionError("reset")]})
    reranker = LocalReranker(
        rerank_settings(),
        device_runtime=FakeRuntime(),
        backend_loader=loader,
        hub_probe=OnlineHub(),
        load_backoff_seconds=30,
    )
    reranker.start()
    deadline = time.monotonic() + 5
    while not loader.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    reranker.close()
    reranker._thread.join(5)  # type: ignore[union-attr]
    assert time.monotonic() - started < 2 and loader.names() == ["primary"]


async def test_wait_ready_times_out(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()
    reranker = make_reranker(FakeLoader({"primary": [FakeBackend(gate=gate)]}))
    started = time.monotonic()
    assert await reranker.wait_ready(0.2) is False
    assert time.monotonic() - started < 2
    with pytest.raises(RerankUnavailable, match="not ready yet"):
        await reranker.rerank("q", ["p"])
    gate.set()
    assert await reranker.wait_ready(5)


async def test_status_and_prometheus(make_reranker: Callable[..., LocalReranker], rerank_settings: Any) -> None:
    registry = CollectorRegistry()
    reranker = LocalReranker(
        rerank_settings(),
        registry,
        device_runtime=FakeRuntime(),
        backend_loader=FakeLoader({"primary": [FakeBackend()]}),
        hub_probe=OnlineHub(),
    )
    assert await reranker.wait_ready(5)
    for _ in range(3):
        await reranker.rerank("q", ["a", "bb"])
    status = reranker.status()
    expected = {
        "enabled", "state", "model", "fallback_used", "reason", "device", "precision", "backend", "load_seconds",
        "warmup_seconds", "validated", "requests", "errors", "latency_ms", "rss_mb", "load_count",
    }  # fmt: skip
    assert expected <= set(status)
    assert status["requests"] == 3 and status["errors"] == 0
    assert set(status["latency_ms"]) == {"p50", "p95", "p99"} and status["latency_ms"]["p50"] is not None
    assert status["rss_mb"] > 0 and status["rss_added_mb"] is not None and status["pairs_per_second"] > 0
    assert status["device"] == "cpu" and status["backend"] == "torch" and status["precision"] == "float32"
    value = registry.get_sample_value
    assert value("crawlrag_rerank_requests_total", {"outcome": "ok"}) == 3
    assert value("crawlrag_rerank_model_loads_total") == 1
    assert value("crawlrag_rerank_state", {"crawlrag_rerank_state": "ready"}) == 1
    assert value("crawlrag_rerank_batch_size_count") >= 3
    assert value("crawlrag_rerank_validated") == 1
    assert value("crawlrag_rerank_rss_bytes", {"phase": "after_load"}) > 0
    assert value("crawlrag_rerank_request_seconds_count") == 3
    assert value("crawlrag_rerank_queue_wait_seconds_count") == 3
    reranker.close()


async def test_gpu_status_reports_memory(make_reranker: Callable[..., LocalReranker]) -> None:
    runtime = FakeRuntime(cuda=2)
    reranker = make_reranker(
        FakeLoader({"primary": [FakeBackend()]}),
        runtime=runtime,
        gpu_preference="auto",
        gpu_device_index=1,
        reranking_backend="auto",
    )
    assert await reranker.wait_ready(5)
    status = reranker.status()
    assert status["device"] == "cuda:1" and status["precision"] == "bfloat16"
    assert status["device_info"]["name"] == "Fake cuda:1" and status["device_info"]["total_memory_mb"] == 8192
    assert runtime.fractions == [("cuda:1", 0.9)]
    assert reranker.metrics.registry.get_sample_value("crawlrag_rerank_gpu_memory_bytes", {"kind": "peak"}) == 2**21
    assert "cuda:1" in runtime.emptied  # cleanup_gpu_memory after load and warm-up
    before = len(runtime.emptied)
    await reranker.rerank("q", ["p"] * 32)  # a large request (4 batches) releases cached memory afterwards
    deadline = time.monotonic() + 5  # after the caller has its scores, so poll
    while len(runtime.emptied) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(runtime.emptied) == before + 1


def test_rerank_sync(make_reranker: Callable[..., LocalReranker]) -> None:
    reranker = make_reranker(FakeLoader({"primary": [FakeBackend()]}))
    assert reranker.rerank_sync("q", ["abcd", "a"], wait_seconds=5) == [4.0, 1.0]
    assert reranker.rerank_sync("q", []) == []


async def test_model_load_error_message(make_reranker: Callable[..., LocalReranker]) -> None:
    loader = FakeLoader({"primary": [ModelLoadError("gone", transient=False)]})
    reranker = make_reranker(loader)
    assert await reranker.wait_ready(5) is False
    assert reranker.status()["reason"] == "no reranking model could be loaded: primary: gone"


async def test_device_planning_failure_becomes_failed(make_reranker: Callable[..., LocalReranker]) -> None:
    class NoBf16Probe(FakeRuntime):
        def cpu_bf16_supported(self) -> bool:
            raise RuntimeError("illegal instruction")

    reranker = make_reranker(FakeLoader({"primary": [FakeBackend()]}), runtime=NoBf16Probe(), reranking_backend="auto")
    assert await reranker.wait_ready(5) is False
    assert reranker.status()["reason"] == "no device could be prepared for the reranker: illegal instruction"


async def test_close_during_warmup_discards_the_model(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    reranker = make_reranker(FakeLoader({"primary": [backend]}), reranking_health_check_enabled=False)
    reranker.start()
    assert backend.started.wait(5)
    reranker.close()
    gate.set()
    reranker._thread.join(5)  # type: ignore[union-attr]
    assert backend.closed and reranker.status()["state"] == "disabled"


async def test_irrelevant_first_is_recorded_not_fatal(make_reranker: Callable[..., LocalReranker]) -> None:
    reranker = make_reranker(FakeLoader({"primary": [FakeBackend(lambda q, p: -float(len(p)))]}))
    assert await reranker.wait_ready(5)
    status = reranker.status()
    assert status["validated"] is True and status["validation"]["relevant_ranked_first"] is False
