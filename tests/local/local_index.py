"""Indexing local targets with the real crawler, model and store, and searching what was stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import LocalEmbedder
from crawlrag.indexer import Indexer, IndexReport
from crawlrag.local import LocalOptions
from crawlrag.search import SearchService
from crawlrag.store import Store, open_store


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
