"""The inference worker: batch sizes, micro-batching under concurrency, error isolation, cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from rerank_fakes import FakeBackend, FakeLoader

from crawlrag.rerank import LocalReranker, RerankUnavailable
from crawlrag.rerank.metrics import RerankMetrics, percentile
from crawlrag.rerank.worker import _STOP, BatchWorker


async def ready(make_reranker: Callable[..., LocalReranker], backend: FakeBackend, **settings: object) -> LocalReranker:
    reranker = make_reranker(
        FakeLoader({"primary": [backend]}), reranking_health_check_enabled=False, reranking_warmup_samples=0, **settings
    )
    assert await reranker.wait_ready(5)
    return reranker


async def test_batch_size_is_honoured(make_reranker: Callable[..., LocalReranker]) -> None:
    backend = FakeBackend()
    reranker = await ready(make_reranker, backend, reranking_batch_size=4)
    passages = ["x" * n for n in range(1, 11)]
    assert await reranker.rerank("q", passages) == [float(n) for n in range(1, 11)]
    assert [len(batch) for batch in backend.calls] == [4, 4, 2]
    # Longest first, so each batch holds passages of similar length.
    assert [len(p) for _, p in backend.calls[0]] == [10, 9, 8, 7]


async def test_concurrent_requests_share_batches_and_get_their_own_scores(
    make_reranker: Callable[..., LocalReranker],
) -> None:
    gate = threading.Event()
    backend = FakeBackend(lambda query, passage: float(len(passage)) + int(query) / 100, gate=gate)
    reranker = await ready(make_reranker, backend, reranking_batch_size=16)
    blocker = asyncio.create_task(reranker.rerank("0", ["first"]))
    await asyncio.to_thread(backend.started.wait, 5)  # the worker is busy: the next requests queue up
    queries = [str(i) for i in range(1, 9)]
    tasks = [asyncio.create_task(reranker.rerank(q, ["a" * int(q), "bb"])) for q in queries]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert await blocker == [5.0]
    for q, scores in zip(queries, results, strict=True):
        assert scores == [int(q) + int(q) / 100, 2 + int(q) / 100]
    merged = backend.calls[1:]
    assert len(merged) == 1 and len(merged[0]) == 16  # 8 requests × 2 pairs in one forward pass
    assert {query for query, _ in merged[0]} == set(queries)


async def test_round_takes_one_batch_worth_of_requests(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    reranker = await ready(make_reranker, backend, reranking_batch_size=4)
    blocker = asyncio.create_task(reranker.rerank("q", ["x"]))
    await asyncio.to_thread(backend.started.wait, 5)
    tasks = [asyncio.create_task(reranker.rerank("q", ["a", "b", "c"])) for _ in range(3)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(blocker, *tasks)
    # Rounds: [blocker], [3+3 pairs → batches of 4 and 2], [3].
    assert [len(batch) for batch in backend.calls] == [1, 4, 2, 3]


async def test_failing_request_does_not_poison_others(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()
    backend = FakeBackend(fail_on="BOOM", gate=gate)
    reranker = await ready(make_reranker, backend, reranking_batch_size=32)
    blocker = asyncio.create_task(reranker.rerank("q", ["x"]))
    await asyncio.to_thread(backend.started.wait, 5)
    good = [asyncio.create_task(reranker.rerank("q", ["aa", "bbb"])) for _ in range(3)]
    bad = asyncio.create_task(reranker.rerank("q", ["ok", "BOOM"]))
    await asyncio.sleep(0.05)
    gate.set()
    assert [await task for task in good] == [[2.0, 3.0]] * 3
    with pytest.raises(RerankUnavailable, match="reranking failed: RuntimeError: cannot score BOOM"):
        await bad
    await blocker
    # Later requests are unaffected, and the failure is counted.
    assert await reranker.rerank("q", ["abcd"]) == [4.0]
    status = reranker.status()
    assert status["errors"] == 1 and status["requests"] == 6 and status["state"] == "ready"


async def test_bad_scores_fail_the_request(make_reranker: Callable[..., LocalReranker]) -> None:
    backend = FakeBackend(lambda q, p: float("inf") if p == "inf" else 1.0)
    reranker = await ready(make_reranker, backend)
    with pytest.raises(RerankUnavailable, match="non-finite"):
        await reranker.rerank("q", ["fine", "inf"])
    assert await reranker.rerank("q", ["fine"]) == [1.0]


async def test_empty_passages_and_cancellation(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    reranker = await ready(make_reranker, backend)
    assert await reranker.rerank("q", []) == []
    blocker = asyncio.create_task(reranker.rerank("q", ["x"]))
    await asyncio.to_thread(backend.started.wait, 5)
    doomed = asyncio.create_task(reranker.rerank("q", ["never scored"]))
    await asyncio.sleep(0.01)
    doomed.cancel()
    await asyncio.sleep(0.01)
    gate.set()
    assert await blocker == [1.0]
    assert await reranker.rerank("q", ["yy"]) == [2.0]
    assert all("never scored" not in p for batch in backend.calls for _, p in batch)


async def test_close_fails_queued_requests(make_reranker: Callable[..., LocalReranker]) -> None:
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    reranker = await ready(make_reranker, backend)
    running = asyncio.create_task(reranker.rerank("q", ["x"]))
    await asyncio.to_thread(backend.started.wait, 5)
    queued = asyncio.create_task(reranker.rerank("q", ["y"]))
    await asyncio.sleep(0.01)
    threading.Timer(0.1, gate.set).start()
    await asyncio.to_thread(reranker.close)
    assert await running == [1.0]  # the round in progress finishes
    with pytest.raises(RerankUnavailable, match="closed"):
        await queued
    assert backend.closed
    with pytest.raises(RerankUnavailable, match="closed"):
        await reranker.rerank("q", ["z"])


def test_stop_fails_requests_that_never_ran() -> None:
    worker = BatchWorker(FakeBackend(), batch_size=4, metrics=RerankMetrics())  # never started
    pending = worker.submit("q", ["a"])
    worker.stop()
    with pytest.raises(RerankUnavailable, match="closed before this request ran"):
        pending.result(1)
    with pytest.raises(RerankUnavailable, match="closed"):
        worker.submit("q", ["a"])


def test_stop_queued_behind_requests_ends_after_their_round() -> None:
    backend = FakeBackend()
    worker = BatchWorker(backend, batch_size=8, metrics=RerankMetrics())
    first, second = worker.submit("q", ["a"]), worker.submit("q", ["bb"])
    worker._queue.put(_STOP)
    late = worker.submit("q", ["ccc"])
    worker._run()  # in this thread: one round with both requests, then the stop
    assert first.result(0) == [1.0] and second.result(0) == [2.0]
    with pytest.raises(RerankUnavailable, match="closed"):
        late.result(0)
    assert backend.calls == [[("q", "bb"), ("q", "a")]]


def test_worker_round_crash_fails_only_that_round() -> None:
    class Passages(list[str]):
        def __getitem__(self, index):  # type: ignore[no-untyped-def]
            raise KeyError("boom")

    worker = BatchWorker(FakeBackend(), batch_size=4, metrics=RerankMetrics())
    worker.start()
    crashed = worker.submit("q", Passages(["a"]))
    with pytest.raises(RerankUnavailable, match="KeyError"):
        crashed.result(5)
    assert worker.submit("q", ["abc"]).result(5) == [3.0]
    worker.stop()


def test_percentile() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.95) == 95.0 and percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert RerankMetrics().latency_ms() == {"p50": None, "p95": None, "p99": None}
