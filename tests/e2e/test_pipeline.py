"""End to end: crawl the generated site with the real crawler, model and SQLite store, then search it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sitegen import FOOTER_MARKER, JS_MARKER, NAV_MARKER, SiteInfo, build_docs_site, serve_site
from typer.testing import CliRunner

from crawlrag.cli import app
from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import LocalEmbedder
from crawlrag.pipeline.indexer import Indexer, IndexReport
from crawlrag.search import SearchService
from crawlrag.store import Store, open_store


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SiteInfo, str]]:
    info = build_docs_site(tmp_path / "site")
    with serve_site(info.root) as base_url:
        yield info, base_url


async def index(settings: Settings, store: Store, embedder: LocalEmbedder, url: str, **options: int) -> IndexReport:
    async with Crawler(settings) as crawler:
        return await Indexer(settings, store, embedder, crawler).run(CrawlRequest(url=url, **options))


def stored_urls(store: Store, candidates: set[str]) -> set[str]:
    return {url for url in candidates if store.get_page(url) is not None}


def invariants(settings: Settings) -> None:
    """Every page's chunks are complete and indexed exactly once, in FTS and in the vector blobs (SQLite)."""
    if settings.sqlite_path is None:
        return
    conn = sqlite3.connect(settings.sqlite_path)
    for page_id, chunk_count in conn.execute("SELECT id, chunk_count FROM pages"):
        indexes = [row[0] for row in conn.execute("SELECT chunk_index FROM chunks WHERE page_id = ?", (page_id,))]
        assert sorted(indexes) == list(range(chunk_count))
    chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    assert conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] == chunks
    assert conn.execute("SELECT COUNT(*) FROM chunks WHERE length(embedding) != 384 * 4").fetchone()[0] == 0


async def test_crawl_index_recrawl_and_search(
    site: tuple[SiteInfo, str], make_settings: Callable[..., Settings], embedder: LocalEmbedder, database_url: str
) -> None:
    info, base = site
    settings = make_settings(browser="auto", use_agentic_rag=True, database_url=database_url)
    store = open_store(settings)

    first = await index(settings, store, embedder, base + "/", max_depth=3)
    every_path = {*info.html_pages, info.js_page, info.text_file, *info.private_pages}
    stored = stored_urls(store, {base + path for path in every_path})
    assert store.stats()["pages"] == len(stored)
    expected = {base + path for path in info.within_depth(3) if path in info.html_pages}
    expected -= {base + path for path in info.private_pages}
    assert expected <= stored
    assert base + info.js_page in stored  # rendered by the browser fallback
    assert not any(base + path in stored for path in info.private_pages)  # robots.txt
    assert any(f.url == base + info.missing_page and "404" in f.reason for f in first.failures)
    assert first.progress.chunks_stored > 0
    invariants(settings)

    contents = " ".join(store.page_markdown(url) or "" for url in stored)
    assert JS_MARKER in contents
    assert NAV_MARKER not in contents and FOOTER_MARKER not in contents

    [source] = store.list_sources()
    assert source.source_id == base.removeprefix("http://")
    assert source.summary.startswith("Example Docs")
    assert source.pages == len(stored) and source.chunks == first.progress.chunks_stored

    # A second crawl stores nothing new: unchanged pages are recognised, nothing is embedded again.
    chunk_rows = store.stats()["chunks"]
    second = await index(settings, store, embedder, base + "/", max_depth=3)
    assert second.progress.stored == 0 and second.progress.chunks_embedded == 0
    assert second.progress.unchanged == len(stored)
    assert second.source_ids == {source.source_id}
    assert store.stats()["chunks"] == chunk_rows
    invariants(settings)

    # A changed page replaces its chunks: the old text is gone, the new one is found.
    page = info.root / "api" / "server.html"
    page.write_text(page.read_text().replace("</main>", "<p>Brand new zebra-stripes section.</p></main>"))
    third = await index(settings, store, embedder, base + "/", max_depth=3)
    assert third.progress.stored == 1
    invariants(settings)
    results = (await SearchService(settings, store, embedder, None).search("zebra stripes")).results
    assert results[0].url == base + "/api/server.html"
    store.close()


def test_cli_crawl_search_sources(site: tuple[SiteInfo, str], tmp_path: Path) -> None:
    _, base = site
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ALLOW_PRIVATE_NETWORK": "true",
        "BROWSER": "never",
        "HF_HUB_OFFLINE": "1",
    }
    runner = CliRunner()
    crawled = runner.invoke(app, ["crawl", base + "/guide/", "--max-depth", "1", "--json"], env=env)
    assert crawled.exit_code == 0, crawled.output
    report = json.loads(crawled.stdout)
    assert report["pages_stored"] >= 3 and report["pages_failed"] == 0

    searched = runner.invoke(app, ["search", "install the package", "--json", "--limit", "3"], env=env)
    assert searched.exit_code == 0, searched.output
    results = json.loads(searched.stdout)["results"]
    assert 1 <= len(results) <= 3
    assert {"url", "content", "score", "source_id", "chunk_index", "headings"} <= set(results[0])

    listed = runner.invoke(app, ["sources", "--json"], env=env)
    [source] = json.loads(listed.stdout)["sources"]
    assert source["pages"] == report["pages_stored"]

    migrated = runner.invoke(app, ["db", "migrate"], env=env)
    assert migrated.exit_code == 0 and "up to date" in migrated.output

    bad = runner.invoke(app, ["crawl", "file:///etc/passwd"], env=env)
    assert bad.exit_code != 0 and "ALLOWED_PATHS" in bad.output
    bad_config = runner.invoke(app, ["sources"], env={**env, "CHUNK_SIZE": "tiny"})
    assert bad_config.exit_code == 2 and "CHUNK_SIZE" in bad_config.output
