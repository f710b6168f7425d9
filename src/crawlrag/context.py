"""The objects one process shares: store, embedder, reranker and search, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from crawlrag.config import Settings
from crawlrag.embeddings import Embedder, build_embedder
from crawlrag.embeddings.instrumented import InstrumentedEmbedder
from crawlrag.rerank import Reranker, build_reranker
from crawlrag.search import SearchService
from crawlrag.store import Store, open_store


@dataclass
class AppContext:
    settings: Settings
    store: Store
    embedder: Embedder
    reranker: Reranker | None
    search: SearchService
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    @classmethod
    def create(
        cls,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        *,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
    ) -> AppContext:
        """Build the shared objects; tests pass an already loaded embedder or a stand-in reranker."""
        registry = registry or CollectorRegistry()
        store = open_store(settings)
        embedder = InstrumentedEmbedder(embedder or build_embedder(settings), registry)
        reranker = reranker or build_reranker(settings, registry)
        return cls(settings, store, embedder, reranker, SearchService(settings, store, embedder, reranker), registry)

    def close(self) -> None:
        if self.reranker is not None:
            self.reranker.close()
        self.embedder.close()
        self.store.close()
