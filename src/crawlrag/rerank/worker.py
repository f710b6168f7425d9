"""The inference worker: one thread owns the model and scores requests taken from a queue.

Requests waiting together are merged into shared batches, sorted by token count and bounded by
RERANKING_BATCH_SIZE pairs and RERANKING_BATCH_TOKENS padded tokens (`batching.py`) so a batch pads little, and
each caller gets its own scores back through a
`concurrent.futures.Future` (which `asyncio.wrap_future` awaits from any event loop). A round takes waiting
requests only until it holds one batch worth of pairs, so large requests are served in arrival order and a
small one never waits behind a crowd.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from crawlrag.rerank.backends import Pair, ScoringBackend
from crawlrag.rerank.batching import CPU_BATCH_TOKENS, plan_batches
from crawlrag.rerank.errors import RerankUnavailable
from crawlrag.rerank.health import score_problem
from crawlrag.rerank.metrics import RerankMetrics

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(eq=False)
class RerankRequest:
    query: str
    passages: Sequence[str]
    future: Future[list[float]] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)
    scores: list[float] = field(init=False)
    remaining: int = field(init=False)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.scores = [0.0] * len(self.passages)
        self.remaining = len(self.passages)


_Item = tuple[RerankRequest, int]  # a request and the index of one of its passages


class BatchWorker:
    def __init__(
        self,
        backend: ScoringBackend,
        *,
        batch_size: int,
        metrics: RerankMetrics,
        batch_tokens: int = CPU_BATCH_TOKENS,
        after_large_round: Callable[[], None] | None = None,
    ) -> None:
        self._backend = backend
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        self._metrics = metrics
        self._after_large_round = after_large_round
        self._large_round = 4 * batch_size
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="crawlrag-rerank-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, query: str, passages: Sequence[str]) -> Future[list[float]]:
        if self._closed:
            raise RerankUnavailable("the reranker is closed")
        request = RerankRequest(query, passages)
        self._queue.put(request)
        return request.future

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the round in progress, then fail whatever is still queued."""
        self._closed = True
        self._queue.put(_STOP)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._fail_queued()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._closed:  # closing: queued requests fail now instead of delaying shutdown
                _cancel(item)
                break
            assert isinstance(item, RerankRequest)
            group, stop = self._collect(item)
            try:
                self._serve(group)
            except Exception as exc:  # a bug here must not kill the thread and strand every later caller
                log.exception("rerank worker round failed")
                for request in group:
                    _finish_with_error(request, exc)
            if stop:
                break
        self._fail_queued()

    def _collect(self, first: RerankRequest) -> tuple[list[RerankRequest], bool]:
        group, pairs = [first], len(first.passages)
        while pairs < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            assert isinstance(item, RerankRequest)
            group.append(item)
            pairs += len(item.passages)
        return group, False

    def _serve(self, group: list[RerankRequest]) -> None:
        # set_running_or_notify_cancel skips requests whose caller already gave up (cancelled task).
        live = [request for request in group if request.future.set_running_or_notify_cancel()]
        now = time.perf_counter()
        for request in live:
            self._metrics.observe_queue_wait(now - request.enqueued)
        items = [(request, i) for request in live for i in range(len(request.passages))]
        lengths = self._lengths([(request.query, request.passages[i]) for request, i in items])
        started = time.perf_counter()
        for indices in plan_batches(lengths, max_pairs=self._batch_size, max_tokens=self._batch_tokens):
            chunk = [items[i] for i in indices]
            batch = [item for item in chunk if item[0].error is None]
            if batch:
                self._score(batch)
            for request, _ in chunk:
                request.remaining -= 1
                if request.remaining == 0:
                    self._finish(request)
        self._metrics.observe_round(len(items), time.perf_counter() - started)
        if self._after_large_round is not None and len(items) >= self._large_round:
            self._after_large_round()

    def _lengths(self, pairs: list[Pair]) -> list[int]:
        try:
            return self._backend.token_lengths(pairs)
        except Exception as exc:  # sizing batches must never fail a request: estimate from characters instead
            log.warning("token counting failed (%s); sizing batches by characters", exc)
            return [(len(query) + len(passage)) // 4 + 3 for query, passage in pairs]

    def _score(self, batch: list[_Item]) -> None:
        try:
            self._predict(batch)
            return
        except Exception as exc:
            requests = list(dict.fromkeys(request for request, _ in batch))
            if len(requests) == 1:
                requests[0].error = exc
                return
            log.info("shared rerank batch failed (%s); scoring its %d requests separately", exc, len(requests))
        # A shared batch failed: rerun each request's pairs alone so only the request that breaks it fails.
        for request in requests:
            try:
                self._predict([item for item in batch if item[0] is request])
            except Exception as exc:
                request.error = exc

    def _predict(self, batch: list[_Item]) -> None:
        scores = self._backend.predict([(request.query, request.passages[i]) for request, i in batch])
        problem = score_problem(scores, len(batch))
        if problem is not None:
            raise ValueError(problem)
        self._metrics.observe_batch(len(batch))
        for (request, i), score in zip(batch, scores, strict=True):
            request.scores[i] = float(score)

    def _finish(self, request: RerankRequest) -> None:
        seconds = time.perf_counter() - request.enqueued
        # Metrics first: a caller reading /health right after its await must see its own request counted.
        self._metrics.observe_request(seconds, ok=request.error is None)
        if request.error is not None:
            log.warning("rerank request failed: %s", request.error, exc_info=request.error)
            _finish_with_error(request, request.error)
        else:
            request.future.set_result(request.scores)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            _cancel(item)


def _cancel(item: object) -> None:
    if isinstance(item, RerankRequest) and item.future.set_running_or_notify_cancel():
        item.future.set_exception(RerankUnavailable("the reranker was closed before this request ran"))


def _finish_with_error(request: RerankRequest, exc: BaseException) -> None:
    if request.future.done():
        return
    message = exc if isinstance(exc, RerankUnavailable) else f"reranking failed: {type(exc).__name__}: {exc}"
    request.future.set_exception(RerankUnavailable(str(message)))
