"""Prometheus metrics of the server, registered in the AppContext's registry so /metrics shows them all."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from crawlrag.embeddings import Embedder
from crawlrag.indexer import IndexProgress

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_PAGE_OUTCOMES = ("stored", "unchanged", "skipped", "failed")


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.tool_calls = Counter(
            "crawlrag_tool_calls",
            "MCP tool calls by tool and outcome (success, error, exception, cancelled)",
            ["tool", "outcome"],
            registry=registry,
        )
        self.tool_seconds = Histogram(
            "crawlrag_tool_duration_seconds",
            "Time spent in MCP tool calls",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.pages = Counter(
            "crawlrag_pages_crawled", "Pages handled by crawl jobs, by outcome", ["outcome"], registry=registry
        )
        self.chunks = Counter("crawlrag_chunks_stored", "Chunks written to the store by crawl jobs", registry=registry)
        self.embed_seconds = Histogram(
            "crawlrag_embedding_duration_seconds",
            "Time to embed one batch (documents) or one query",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.embedded_texts = Counter(
            "crawlrag_embedded_texts", "Texts embedded, by kind (documents, query)", ["kind"], registry=registry
        )
        self.jobs = Gauge("crawlrag_crawl_jobs", "Crawl jobs in this process by state", ["state"], registry=registry)
        self.jobs_finished = Counter(
            "crawlrag_crawl_jobs_finished", "Crawl jobs that ended, by final status", ["status"], registry=registry
        )

    def unregister(self) -> None:
        """Remove these metrics from the registry, so a later runtime on the same context can register them."""
        for collector in (
            self.tool_calls,
            self.tool_seconds,
            self.pages,
            self.chunks,
            self.embed_seconds,
            self.embedded_texts,
            self.jobs,
            self.jobs_finished,
        ):
            self._registry.unregister(collector)

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_seconds.labels(tool).observe(seconds)


class ProgressCounter:
    """Turns a crawl job's cumulative progress into counter increments, so /metrics moves while a crawl runs."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        self._seen: dict[str, int] = dict.fromkeys((*_PAGE_OUTCOMES, "chunks"), 0)

    def update(self, progress: IndexProgress) -> None:
        for outcome in _PAGE_OUTCOMES:
            value = getattr(progress, outcome)
            if value > self._seen[outcome]:
                self._metrics.pages.labels(outcome).inc(value - self._seen[outcome])
                self._seen[outcome] = value
        if progress.chunks_stored > self._seen["chunks"]:
            self._metrics.chunks.inc(progress.chunks_stored - self._seen["chunks"])
            self._seen["chunks"] = progress.chunks_stored


class TimedEmbedder:
    """An `Embedder` that records embedding latency; everything else goes to the wrapped embedder."""

    def __init__(self, inner: Embedder, metrics: ServerMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def load(self) -> None:
        self.inner.load()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self._metrics.embed_seconds.labels("documents").observe(time.perf_counter() - started)
        self._metrics.embedded_texts.labels("documents").inc(len(texts))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        started = time.perf_counter()
        vector = self.inner.embed_query(text)
        self._metrics.embed_seconds.labels("query").observe(time.perf_counter() - started)
        self._metrics.embedded_texts.labels("query").inc()
        return vector

    def status(self) -> dict[str, Any]:
        return self.inner.status()
