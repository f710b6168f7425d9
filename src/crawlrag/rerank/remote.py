"""`RemoteReranker`: scores passages with a rerank server, TEI's `/rerank` or the Cohere-style `/v1/rerank`.

It has the local reranker's lifecycle (start() validates in the background with the dummy health-check pair),
the same /health keys and metrics, and the same fallback: any failure raises RerankUnavailable and search
carries on without reranking.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from prometheus_client import CollectorRegistry

from crawlrag.config import Settings
from crawlrag.remote import RemoteError, RetryPolicy, auth_headers, post_json
from crawlrag.rerank.errors import RerankUnavailable
from crawlrag.rerank.health import IRRELEVANT, QUERY, RELEVANT, score_problem
from crawlrag.rerank.lifecycle import process_rss
from crawlrag.rerank.metrics import RerankMetrics
from crawlrag.rerank.state import SERVING, RerankState, StateMachine

log = logging.getLogger(__name__)

RemoteKind = Literal["tei", "cohere"]


def endpoint(kind: RemoteKind, base_url: str) -> str:
    """The rerank URL for a server's base URL; a URL that already ends in /rerank is used as it is."""
    base = base_url.rstrip("/")
    if base.endswith("/rerank"):
        return base
    if kind == "cohere":
        return base + "/rerank" if base.endswith("/v1") else base + "/v1/rerank"
    return base + "/rerank"


def request_body(kind: RemoteKind, model: str, query: str, texts: Sequence[str]) -> dict[str, Any]:
    if kind == "tei":
        return {"query": query, "texts": list(texts), "truncate": True, "raw_scores": False}
    return {"model": model, "query": query, "documents": list(texts), "top_n": len(texts)}


def parse_scores(kind: RemoteKind, body: Any, expected: int) -> list[float]:
    """One score per text in input order; raises ValueError when the answer does not have that shape."""
    items = body if kind == "tei" else (body.get("results") if isinstance(body, dict) else None)
    key = "score" if kind == "tei" else "relevance_score"
    if not isinstance(items, list):
        raise ValueError(f"expected a list of results, got {type(items).__name__}")
    scores: dict[int, float] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int) or key not in item:
            raise ValueError(f"each result needs an integer `index` and `{key}`")
        scores[item["index"]] = float(item[key])
    if sorted(scores) != list(range(expected)):
        raise ValueError(f"the results cover indexes {sorted(scores)[:10]}, expected 0..{expected - 1}")
    ordered = [scores[i] for i in range(expected)]
    problem = score_problem(ordered, expected)
    if problem is not None:
        raise ValueError(problem)
    return ordered


class RemoteReranker:
    """A rerank server client; `transport` replaces the network in tests."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if settings.reranking_provider == "local" or not settings.reranking_url:
            raise ValueError("RemoteReranker needs RERANKING_PROVIDER=tei|cohere and RERANKING_URL")
        self._settings = settings
        self.kind: RemoteKind = settings.reranking_provider
        self.url = endpoint(self.kind, settings.reranking_url)
        self.metrics = RerankMetrics(registry)
        initial = RerankState.NOT_STARTED if settings.use_reranking else RerankState.DISABLED
        self.metrics.set_state(initial)
        self.state = StateMachine(initial, listener=self.metrics.set_state)
        # Requests at query time get one retry at most: a search should not wait long for an optional step.
        self._retry = retry or RetryPolicy(max_retries=1, backoff_seconds=0.2, max_backoff_seconds=1.0)
        self._validation_retry = RetryPolicy(max_retries=settings.reranking_load_retries, sleep=self._retry.sleep)
        self._client = httpx.Client(
            headers=auth_headers(settings.reranking_api_key),
            timeout=httpx.Timeout(settings.reranking_timeout_seconds),
            transport=transport,
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._validation_seconds: float | None = None

    @property
    def enabled(self) -> bool:
        return self._settings.use_reranking

    @property
    def model(self) -> str:
        return self._settings.reranking_model_name

    def start(self) -> None:
        with self._lock:
            if not self.enabled or self._closed or self._thread is not None:
                return
            self.state.transition(RerankState.LOADING, f"connecting to {self.url}")
            self._thread = threading.Thread(target=self._validate, name="crawlrag-rerank-remote", daemon=True)
            self._thread.start()

    def _validate(self) -> None:
        """Startup check: the dummy pair must come back as two finite scores, else FAILED with the reason."""
        started = time.perf_counter()
        try:
            self.state.transition(RerankState.VALIDATING, f"dummy request to {self.url}")
            scores = self._score(QUERY, [RELEVANT, IRRELEVANT], self._validation_retry)
        except (RemoteError, ValueError) as exc:
            self.metrics.set_validated(False)
            self._settle(RerankState.FAILED, f"health-check request to {self.url} failed: {exc}")
            return
        self._validation_seconds = time.perf_counter() - started
        self.metrics.set_validated(True)
        self.metrics.set_load_seconds(self._validation_seconds)
        self.metrics.model_loaded()
        if scores[0] <= scores[1]:
            log.warning("reranker health check: the irrelevant passage scored higher (%s)", scores)
        # WARMING is instant here (nothing to compile), but keeps the lifecycle the local reranker reports.
        self._settle(RerankState.WARMING, None)
        self._settle(RerankState.READY, None)

    def _settle(self, state: RerankState, reason: str | None) -> None:
        with self._lock:
            if not self._closed:
                self.state.transition(state, reason)

    def _score(self, query: str, texts: Sequence[str], retry: RetryPolicy) -> list[float]:
        scores: list[float] = []
        size = self._settings.reranking_batch_size  # TEI refuses more than --max-client-batch-size texts
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            body = post_json(self._client, self.url, request_body(self.kind, self.model, query, batch), retry)
            scores += parse_scores(self.kind, body, len(batch))
        return scores

    async def wait_ready(self, timeout: float) -> bool:
        if not self.enabled:
            return False
        self.start()
        return await self.state.wait_settled(timeout) in SERVING

    def _rerank_sync(self, query: str, passages: Sequence[str]) -> list[float]:
        state, reason = self.state.snapshot()
        if state not in SERVING:
            raise RerankUnavailable(f"the reranking server is not ready ({state}: {reason})")
        started = time.perf_counter()
        try:
            scores = self._score(query, passages, self._retry)
        except (RemoteError, ValueError) as exc:
            self.metrics.observe_request(time.perf_counter() - started, ok=False)
            raise RerankUnavailable(f"the reranking server failed: {exc}") from exc
        self.metrics.observe_request(time.perf_counter() - started, ok=True)
        self.metrics.observe_batch(len(passages))
        return scores

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        # The blocking client runs in a thread: it works from any event loop (CLI runs, the server's loop).
        return await asyncio.to_thread(self._rerank_sync, query, list(passages))

    def status(self) -> dict[str, Any]:
        state, reason = self.state.snapshot()
        counts = self.metrics.counts()
        return {
            "enabled": self.enabled,
            "state": state.value,
            "model": self.model,
            "fallback_used": False,
            "reason": reason,
            "device": None,
            "precision": None,
            "backend": self.kind,
            "load_seconds": None if self._validation_seconds is None else round(self._validation_seconds, 3),
            "warmup_seconds": None,
            "validated": self.metrics.validated,
            "requests": counts["requests"],
            "errors": counts["errors"],
            "latency_ms": self.metrics.latency_ms(),
            "rss_mb": round(process_rss() / 2**20, 1),
            "load_count": counts["load_count"],
            "provider": self.kind,
            "url": self.url,
            "batch_size": self._settings.reranking_batch_size,
        }

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()
        self.state.transition(RerankState.DISABLED, "the reranker is closed")
