"""An embedder wrapper that records embedding latency and volume as Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from crawlrag.embeddings.base import Embedder, EmbedderWrapper

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class InstrumentedEmbedder(EmbedderWrapper):
    """Times every call of the wrapped embedder; the CLI, crawls and searches all go through it."""

    def __init__(self, inner: Embedder, registry: CollectorRegistry) -> None:
        self._inner = inner
        self._seconds = Histogram(
            "crawlrag_embedding_duration_seconds",
            "Time to embed one batch (documents) or one query",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._texts = Counter(
            "crawlrag_embedded_texts", "Texts embedded, by kind (documents, query)", ["kind"], registry=registry
        )

    @property
    def inner(self) -> Embedder:
        return self._inner

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self._seconds.labels("documents").observe(time.perf_counter() - started)
        self._texts.labels("documents").inc(len(texts))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        started = time.perf_counter()
        vector = self.inner.embed_query(text)
        self._seconds.labels("query").observe(time.perf_counter() - started)
        self._texts.labels("query").inc()
        return vector
