"""Indexing local targets with the real crawler, model and store, and searching what was stored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import LocalEmbedder
from crawlrag.pipeline.indexer import Indexer, IndexReport
from crawlrag.pipeline.options import CrawlOptions
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
        request = CrawlRequest(url=str(target), **{k: v for k, v in options.items() if k not in ("source_id", "ref")})
        crawl = replace(CrawlOptions.from_request(request), source_id=options.get("source_id"), ref=options.get("ref"))
        async with Crawler(self.settings) as crawler:
            indexer = Indexer(self.settings, self.store, self.embedder, crawler)
            return await indexer.run(crawl)

    async def keyword_urls(self, word: str, source_id: str | None = None) -> list[str]:
        response = await self.search.search(word, source_id=source_id, match_count=20, mode="keyword")
        return [hit.url for hit in response.results]

    async def hybrid_urls(self, query: str, source_id: str | None = None) -> list[str]:
        response = await self.search.search(query, source_id=source_id, match_count=5)
        return [hit.url for hit in response.results]
