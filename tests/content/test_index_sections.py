"""Indexing a Sphinx site: index pages store no chunks, hits carry kind and section_url, kinds filter search."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sitegen import serve_site

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import LocalEmbedder
from crawlrag.pipeline.indexer import Indexer
from crawlrag.search import SearchInputError, SearchService
from crawlrag.store import open_store


async def test_index_pages_sections_and_kinds(
    sphinx_html: Path, make_settings: Callable[..., Settings], embedder: LocalEmbedder, database_url: str
) -> None:
    settings = make_settings(browser="never", database_url=database_url)
    store = open_store(settings)
    try:
        with serve_site(sphinx_html) as base:
            async with Crawler(settings) as crawler:
                report = await Indexer(settings, store, embedder, crawler).run(
                    CrawlRequest(url=base + "/index.html", max_depth=3)
                )
        result = report.to_dict()
        # genindex and py-modindex are followed but store nothing to retrieve; Sphinx marks search.html noindex.
        assert result["pages_index"] == 2, result
        assert {"url": f"{base}/search.html", "reason": "noindex"} in result["skipped"]
        for name in ("genindex.html", "py-modindex.html"):
            stored = store.get_page(f"{base}/{name}")
            assert stored is not None and stored.kind == "index" and stored.chunk_count == 0, name
        changes = store.get_page(f"{base}/changes.html")
        assert changes is not None and changes.kind == "changelog" and changes.chunk_count > 0
        assert "convert" in result["timings_s"]

        service = SearchService(settings, store, embedder, None)
        response = await service.search("resize the widget width and height", match_count=5)
        [hit] = [hit for hit in response.results if "resize(width: int" in hit.content]
        assert hit.url == f"{base}/api.html" and hit.kind == "content"
        assert hit.section_url.startswith(f"{base}/api.html#shapes.")
        data = hit.to_dict()
        assert data["section_url"] == hit.section_url and data["kind"] == "content"

        response = await service.search("install the package with pip", match_count=5)
        install = next(hit for hit in response.results if hit.url == f"{base}/guide.html")
        assert install.section_url in (f"{base}/guide.html#installing", f"{base}/guide.html#user-guide")

        changelog = await service.search("first release", match_count=5, kinds=["changelog"])
        assert changelog.results and {hit.kind for hit in changelog.results} == {"changelog"}
        content = await service.search("first release", match_count=5, kinds=["content"])
        assert all(hit.kind == "content" for hit in content.results)
        try:
            await service.search("first release", kinds=["nonsense"])  # type: ignore[list-item]
        except SearchInputError as exc:
            assert "nonsense" in str(exc)
        else:
            raise AssertionError("an unknown kind must be refused")
    finally:
        store.close()
