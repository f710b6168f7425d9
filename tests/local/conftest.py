"""Fixtures for local sources: settings whose ALLOWED_PATHS is one folder of the test's tmp_path, and indexing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import LocalEmbedder
from crawlrag.indexer import Indexer, IndexReport
from crawlrag.local import LocalOptions
from crawlrag.search import SearchService
from crawlrag.store import Store, open_store


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def local_settings(make_settings: Callable[..., Settings], allowed: Path) -> Settings:
    return make_settings(allowed_paths=[str(allowed)], browser="never")


class Indexed:
    """One store and search service over it, indexing local targets with the real model."""

    def __init__(self, settings: Settings, embedder: LocalEmbedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store: Store = open_store(settings)
        self.search = SearchService(settings, self.store, embedder, None)

    async def index(self, target: str | Path, **options: Any) -> IndexReport:
        local = LocalOptions(source_id=options.pop("source_id", None), ref=options.pop("ref", None))
        async with Crawler(self.settings) as crawler:
            indexer = Indexer(self.settings, self.store, self.embedder, crawler)
            return await indexer.run(CrawlRequest(url=str(target), **options), local=local)

    async def keyword_urls(self, word: str, source_id: str | None = None) -> list[str]:
        response = await self.search.search(word, source_id=source_id, match_count=20, mode="keyword")
        return [hit.url for hit in response.results]

    async def hybrid_urls(self, query: str, source_id: str | None = None) -> list[str]:
        response = await self.search.search(query, source_id=source_id, match_count=5)
        return [hit.url for hit in response.results]


@pytest.fixture
def indexed(local_settings: Settings, embedder: LocalEmbedder) -> Iterator[Indexed]:
    result = Indexed(local_settings, embedder)
    yield result
    result.store.close()
