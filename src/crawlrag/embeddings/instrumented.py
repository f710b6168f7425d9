"""An embedder wrapper that records embedding latency and volume as Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from crawlrag.embeddings.base import Embedder
from crawlrag.tokens import TokenCounter

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class InstrumentedEmbedder:
    """Times every call of the wrapped embedder; the CLI, crawls and searches all go through it."""

    def __init__(self, inner: Embedder, registry: CollectorRegistry) -> None:
        self.inner = inner
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
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_input_tokens(self) -> int | None:
        return self.inner.max_input_tokens

    def token_counter(self) -> TokenCounter:
        return self.inner.token_counter()

    def load(self) -> None:
        self.inner.load()

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

    def status(self) -> dict[str, Any]:
        return self.inner.status()

    def close(self) -> None:
        """Release what the wrapped embedder holds (worker processes, HTTP clients), where it holds any."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
