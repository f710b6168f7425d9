"""End-to-end crawls of the generated docs site: which URLs come out as Page, PageFailure or PageSkipped."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from crawl_helpers import Outcome, ServedSite, crawl_all
from sitegen import build_docs_site, serve_site

from crawlrag.config import Settings
from crawlrag.crawl import BlockedURLError, Crawler, CrawlInputError, CrawlProgress, CrawlRequest
from crawlrag.models import Page

SettingsFactory = Callable[..., Settings]

DEPTH_1_PAGES = {"/", "/guide/", "/api/", "/about.html", "/notes.txt", "/guide/usage.html"}
DEPTH_1_FAILURES = {"/missing.html": "HTTP 404", "/js-app.html": "empty page"}
DEPTH_1_SKIPPED = {
    "/private/secret.html": "robots.txt",
    "/downloads/archive.zip": "unsupported content type: application/zip",
    "/downloads/manual.pdf": "unsupported content type: application/pdf",
}


async def run(site: ServedSite, settings: Settings, path: str = "/", **request: object) -> Outcome:
    async with Crawler(settings) as crawler:
        return Outcome.of(site, await crawl_all(crawler, CrawlRequest(site.url(path), **request)))


async def test_depth_0_fetches_only_the_start_page(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), max_depth=0)
    assert set(outcome.pages) == {"/"}
    assert not outcome.failures and not outcome.skipped
    page = outcome.pages["/"]
    assert page.source_id == site.base_url.removeprefix("http://")
    assert page.title == "Example Docs — Example Docs"
    assert page.status_code == 200 and page.content_type == "text/html"
    assert page.etag and page.last_modified


async def test_depth_1(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), max_depth=1)
    assert set(outcome.pages) == DEPTH_1_PAGES
    assert outcome.failures == DEPTH_1_FAILURES
    assert outcome.skipped == DEPTH_1_SKIPPED
    # The redirect from /old-page.html produced the /guide/usage.html page; nothing was fetched twice.
    assert site.hits["/old-page.html"] == 1 and site.hits["/guide/usage.html"] == 1
    assert outcome.pages["/notes.txt"].content_type == "text/plain"
    assert outcome.pages["/notes.txt"].markdown.startswith("Release notes")
    assert outcome.pages["/notes.txt"].title == "Release notes"
    # Links outside the site are never fetched (they would fail: the tests are offline).
    assert not any(url.startswith(("https://example", "mailto")) for url in outcome.order)


async def test_depth_3_follows_nested_links_and_fetches_each_url_once(
    site: ServedSite, crawl_settings: SettingsFactory
) -> None:
    outcome = await run(site, crawl_settings(), max_depth=3)
    expected_pages = DEPTH_1_PAGES | {
        "/guide/install.html",
        "/api/client.html",
        "/api/server.html",
        "/guide/advanced/tuning.html",
    }
    assert set(outcome.pages) == expected_pages
    assert outcome.failures == DEPTH_1_FAILURES
    assert outcome.skipped == DEPTH_1_SKIPPED
    assert set(outcome.order) == site.info.within_depth(3)
    assert "/guide/advanced/deep.html" not in site.hits  # depth 4
    assert site.hits["/robots.txt"] == 1
    assert all(count == 1 for path, count in site.hits.items()), site.hits
    assert "/private/secret.html" not in site.hits


async def test_markdown_is_the_main_content_only(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), max_depth=2)
    markers = site.info.markers
    html_pages = [page for path, page in outcome.pages.items() if path != "/notes.txt"]
    assert len(html_pages) >= 6
    for page in html_pages:
        for chrome in (markers["nav"], markers["sidebar"], markers["footer"]):
            assert chrome not in page.markdown, (page.url, chrome)
        assert "¶" not in page.markdown
    guide = outcome.pages["/guide/"].markdown
    assert guide.startswith("# User guide")
    assert f'```python\ndef example_guide():\n    return "{markers["code"]}"\n' in guide
    assert f"[Link to /guide/install.html]({site.url('/guide/install.html')})" in guide
    assert "maintained by volunteers" in outcome.pages["/about.html"].markdown  # the page without <main>


async def test_max_pages_stops_early_without_overfetching(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), max_depth=3, max_pages=3, max_concurrent=10)
    assert len(outcome.pages) == 3
    assert "/" in outcome.pages
    assert set(outcome.pages) <= site.info.within_depth(1)  # breadth first
    html_fetches = sum(count for path, count in site.hits.items() if path != "/robots.txt")
    assert html_fetches <= 3 + len(outcome.failures) + len(outcome.skipped) + 1  # +1: the redirect hop


async def test_sitemap_index_crawl(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), site.info.sitemap_index, max_depth=3)
    listed = set(site.info.sitemap_pages) - set(site.info.private_pages)
    assert set(outcome.pages) == listed
    assert outcome.skipped == {
        "/private/secret.html": "robots.txt",
        site.info.sitemap_foreign_url: "different site",
    }
    assert not outcome.failures
    assert "/" not in site.hits and "/api/" not in site.hits  # listed pages only, no link following
    assert site.hits["/sitemaps/api.xml.gz"] == 1


async def test_sitemap_url_that_is_a_page_is_crawled_as_a_page(tmp_path: Path, crawl_settings: SettingsFactory) -> None:
    (tmp_path / "sitemap").mkdir()
    (tmp_path / "sitemap" / "index.html").write_text(
        '<html><body><main><h1>Site map</h1><p>All pages.</p><a href="/a.html">A</a></main></body></html>'
    )
    (tmp_path / "a.html").write_text("<html><body><main><p>Page A has words.</p></main></body></html>")
    with serve_site(tmp_path) as base:
        async with Crawler(crawl_settings()) as crawler:
            results = await crawl_all(crawler, CrawlRequest(base + "/sitemap/", max_depth=1))
    assert sorted(result.url for result in results if isinstance(result, Page)) == [
        base + "/a.html",
        base + "/sitemap/",
    ]


async def test_llms_txt_crawl_follows_listed_links_once(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), site.info.llms_txt, max_depth=3)
    assert set(outcome.pages) == {site.info.llms_txt, *site.info.llms_links}
    assert not outcome.failures and not outcome.skipped
    llms = outcome.pages[site.info.llms_txt]
    assert llms.content_type == "text/plain" and llms.title == "Example Docs"
    assert llms.markdown == (site.info.root / "llms.txt").read_text().strip().replace("__BASE_URL__", site.base_url)
    assert "/api/server.html" not in site.hits  # linked from /api/client.html, but llms.txt links are not followed


async def test_llms_full_txt_is_stored_as_is(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), site.info.llms_full_txt, max_depth=3)
    assert set(outcome.pages) == {site.info.llms_full_txt}
    assert outcome.pages[site.info.llms_full_txt].markdown.startswith("# Example Docs (full)")
    assert "/api/server.html" not in site.hits


async def test_robots_txt_can_be_ignored(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(respect_robots_txt=False), max_depth=1)
    assert "/private/secret.html" in outcome.pages
    assert "/robots.txt" not in site.hits


async def test_include_and_exclude_patterns(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), max_depth=3, include=("/guide/*",))
    assert set(outcome.pages) == {
        "/",
        "/guide/",
        "/guide/install.html",
        "/guide/usage.html",
        "/guide/advanced/tuning.html",
    }
    assert set(outcome.skipped.values()) == {"excluded"}
    assert {"/api/", "/about.html", "/old-page.html", "/private/secret.html"} <= set(outcome.skipped)
    assert "/api/" not in site.hits

    site.hits.clear()
    outcome = await run(site, crawl_settings(), max_depth=1, exclude=("*/api/*", "*.zip"))
    assert outcome.skipped["/api/"] == "excluded"
    assert outcome.skipped["/downloads/archive.zip"] == "excluded"
    assert "/api/" not in site.hits and "/downloads/archive.zip" not in site.hits


async def test_start_url_is_always_allowed(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    outcome = await run(site, crawl_settings(), "/api/", max_depth=0, exclude=("*/api/*",))
    assert set(outcome.pages) == {"/api/"}


async def test_server_errors_and_limits(docs_site_copy: Path, crawl_settings: SettingsFactory) -> None:
    with serve_site(docs_site_copy, errors={"/guide/": 500, "/api/": 403}) as base:
        async with Crawler(crawl_settings()) as crawler:
            results = await crawl_all(crawler, CrawlRequest(base + "/", max_depth=1))
            failures = {result.url.removeprefix(base): getattr(result, "reason", "") for result in results}
            assert failures["/guide/"] == "HTTP 500"
            assert failures["/api/"] == "HTTP 403"
        async with Crawler(crawl_settings(max_response_bytes=1024)) as crawler:
            (result,) = await crawl_all(crawler, CrawlRequest(base + "/", max_depth=0))
            assert "response too large" in getattr(result, "reason", "")
        async with Crawler(crawl_settings(request_timeout_seconds=0.3)) as crawler:
            started = time.monotonic()
            (result,) = await crawl_all(crawler, CrawlRequest(base + "/slow/page-0.html", max_depth=0))
            assert getattr(result, "reason", "") == "timed out after 0.3s"
            assert time.monotonic() - started < 2
        async with Crawler(crawl_settings(max_redirects=0)) as crawler:
            (result,) = await crawl_all(crawler, CrawlRequest(base + "/old-page.html", max_depth=0))
            assert getattr(result, "reason", "") == "too many redirects (more than 0)"


@pytest.fixture
def docs_site_copy(tmp_path: Path) -> Path:
    return build_docs_site(tmp_path / "site").root


async def test_conditional_recrawl(docs_site_copy: Path, crawl_settings: SettingsFactory) -> None:
    statuses: Counter[tuple[str, int]] = Counter()
    with serve_site(docs_site_copy, statuses=statuses) as base:
        async with Crawler(crawl_settings()) as crawler:
            first = await crawl_all(crawler, CrawlRequest(base + "/", max_depth=1))
            stored = {page.url: (page.etag, page.last_modified) for page in first if isinstance(page, Page)}
            assert len(stored) == len(DEPTH_1_PAGES)

            second = await crawl_all(crawler, CrawlRequest(base + "/", max_depth=1), validators=stored.get)
            not_modified = {result.url for result in second if getattr(result, "reason", "") == "not modified"}
            assert not_modified == set(stored)  # /guide/usage.html was reached through /old-page.html
            assert not any(isinstance(result, Page) for result in second)
            # Leaves were asked conditionally (304, no body); the start page was needed for its links.
            assert statuses[("/guide/", 304)] == 1 and statuses[("/notes.txt", 304)] == 1
            assert statuses[("/", 304)] == 0 and statuses[("/", 200)] == 2

            (docs_site_copy / "api" / "index.html").write_text(
                "<html><body><main><h1>API</h1><p>Rewritten API page.</p></main></body></html>"
            )
            third = await crawl_all(crawler, CrawlRequest(base + "/", max_depth=1), validators=stored.get)
            assert [result.url for result in third if isinstance(result, Page)] == [base + "/api/"]


async def test_progress_is_reported(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    reports: list[CrawlProgress] = []
    async with Crawler(crawl_settings()) as crawler:
        results = await crawl_all(crawler, CrawlRequest(site.url("/"), max_depth=1), on_progress=reports.append)
    assert len(reports) == len(results)
    last = reports[-1]
    assert (last.fetched, last.failed, last.skipped, last.queued) == (6, 2, 3, 0)
    assert last.discovered >= len(results)
    assert [report.fetched for report in reports] == sorted(report.fetched for report in reports)


async def test_crawling_prints_nothing_to_stdout(
    site: ServedSite, crawl_settings: SettingsFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    await run(site, crawl_settings(), max_depth=2)
    assert capfd.readouterr().out == ""


async def test_cancellation_stops_fetches_promptly(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    first_result = asyncio.Event()

    async def consume(crawler: Crawler) -> None:
        async for _ in crawler.crawl(CrawlRequest(site.url("/slow/"), max_depth=1)):
            first_result.set()

    async with Crawler(crawl_settings(max_concurrent_per_host=10)) as crawler:
        task = asyncio.create_task(consume(crawler))
        await asyncio.wait_for(first_result.wait(), timeout=5)  # the index page, while slow pages are in flight

        async def all_slow_pages_requested() -> None:
            while sum(site.hits[path] for path in site.info.slow_pages) < len(site.info.slow_pages):
                await asyncio.sleep(0.02)

        # Polled, not a fixed sleep: on a loaded machine the last request can take a moment to start.
        await asyncio.wait_for(all_slow_pages_requested(), timeout=5)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("crawlrag fetch")]


async def test_breaking_out_of_the_loop_cancels_fetches(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    async with Crawler(crawl_settings()) as crawler:
        started = time.monotonic()
        results = crawler.crawl(CrawlRequest(site.url("/slow/"), max_depth=1))
        first = await anext(results)
        await results.aclose()  # what `async with aclosing(...)` or garbage collection does
        assert first.url == site.url("/slow/")
        assert time.monotonic() - started < 2
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("crawlrag fetch")]


async def test_private_network_is_refused_unless_allowed(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    async with Crawler(crawl_settings(allow_private_network=False)) as crawler:
        with pytest.raises(BlockedURLError, match="ALLOW_PRIVATE_NETWORK"):
            await crawl_all(crawler, CrawlRequest(site.url("/")))
        with pytest.raises(BlockedURLError, match="non-public address"):
            await crawl_all(crawler, CrawlRequest("http://localhost/"))
    # ALLOWED_HOSTS exempts the hosts it lists from the check; it does not exempt others, nor restrict to itself.
    async with Crawler(crawl_settings(allow_private_network=False, allowed_hosts=["docs.example.com"])) as crawler:
        with pytest.raises(BlockedURLError, match="ALLOWED_HOSTS"):
            await crawl_all(crawler, CrawlRequest(site.url("/")))
    assert not site.hits
    async with Crawler(crawl_settings(allow_private_network=False, allowed_hosts=["127.0.0.1"])) as crawler:
        results = await crawl_all(crawler, CrawlRequest(site.url("/"), max_depth=0))
    assert [type(result).__name__ for result in results] == ["Page"]


async def test_bad_requests_are_rejected(crawl_settings: SettingsFactory) -> None:
    with pytest.raises(CrawlInputError, match="max_depth"):
        CrawlRequest("https://example.com/", max_depth=-1)
    with pytest.raises(CrawlInputError, match="max_pages"):
        CrawlRequest("https://example.com/", max_pages=0)
    with pytest.raises(CrawlInputError, match="max_concurrent"):
        CrawlRequest("https://example.com/", max_concurrent=0)
    assert CrawlRequest("https://example.com/", include=["/a/*"]).include == ("/a/*",)
    async with Crawler(crawl_settings()) as crawler:
        with pytest.raises(CrawlInputError, match="only http"):
            await crawl_all(crawler, CrawlRequest("ftp://example.com/"))
    with pytest.raises(RuntimeError, match="async with"):
        await crawl_all(Crawler(crawl_settings()), CrawlRequest("https://example.com/"))
