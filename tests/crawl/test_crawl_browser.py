"""The headless-browser fallback for JavaScript pages (needs the Debian `chromium` package)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
from crawl_helpers import Outcome, ServedSite, chromium_profile_dirs, crawl_all, crawlrag_chromium_processes
from sitegen import JS_MARKER, wait_until

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.crawl.browser import BrowserRenderer

pytestmark = pytest.mark.browser

SettingsFactory = Callable[..., Settings]


@pytest.mark.usefixtures("no_leftover_chromium")
async def test_javascript_page_is_rendered_and_chromium_is_stopped(
    site: ServedSite, crawl_settings: SettingsFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    profiles_before = set(chromium_profile_dirs())
    async with Crawler(crawl_settings(browser="auto")) as crawler:
        start_only = await crawl_all(crawler, CrawlRequest(site.url("/"), max_depth=0))
        assert len(start_only) == 1
        assert not crawlrag_chromium_processes()  # started lazily: a static page does not need it

        outcome = Outcome.of(site, await crawl_all(crawler, CrawlRequest(site.url("/"), max_depth=1)))
        assert crawlrag_chromium_processes()

    page = outcome.pages[site.info.js_page]
    assert JS_MARKER in page.markdown
    assert page.markdown.startswith("# Rendered by JavaScript")
    assert page.title == "JS App — Example Docs"
    assert "/missing.html" in outcome.failures
    # Only the JavaScript page was rendered: it is the only one requested twice (HTTP, then browser).
    assert site.hits[site.info.js_page] == 2
    assert site.hits["/guide/"] == 1 and site.hits["/about.html"] == 1

    assert not crawlrag_chromium_processes()
    assert set(chromium_profile_dirs()) == profiles_before
    assert capfd.readouterr().out == ""


@pytest.mark.usefixtures("no_leftover_chromium")
async def test_browser_always_renders_every_html_page(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    async with Crawler(crawl_settings(browser="always")) as crawler:
        outcome = Outcome.of(site, await crawl_all(crawler, CrawlRequest(site.url("/guide/"), max_depth=0)))
    markdown = outcome.pages["/guide/"].markdown
    assert markdown.startswith("# User guide")
    assert site.info.markers["nav"] not in markdown and site.info.markers["footer"] not in markdown
    assert site.hits["/guide/"] == 2  # the plain request (status, type, validators), then the browser


async def test_missing_browser_is_reported_once(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    profiles_before = set(chromium_profile_dirs())
    async with Crawler(crawl_settings(browser="auto", chromium_path="/nonexistent/chromium")) as crawler:
        first = await crawl_all(crawler, CrawlRequest(site.url(site.info.js_page), max_depth=0))
        second = await crawl_all(crawler, CrawlRequest(site.url(site.info.js_page), max_depth=0))
    for (result,) in (first, second):
        reason = getattr(result, "reason", "")
        assert reason.startswith("empty page (browser unavailable: /nonexistent/chromium:")
        assert "CHROMIUM_PATH" in reason
    assert set(chromium_profile_dirs()) == profiles_before


@pytest.mark.usefixtures("no_leftover_chromium")
async def test_renderer_restarts_a_crashed_browser(site: ServedSite, crawl_settings: SettingsFactory) -> None:
    renderer = BrowserRenderer(crawl_settings(browser="auto"))
    try:
        first = await renderer.render(site.url(site.info.js_page))
        assert JS_MARKER in first.html
        crashed_pid = renderer.pid
        assert crashed_pid is not None
        os.killpg(crashed_pid, signal.SIGKILL)
        assert wait_until(lambda: not renderer.running)
        second = await renderer.render(site.url(site.info.js_page))
        assert JS_MARKER in second.html
        assert renderer.pid not in (None, crashed_pid)
    finally:
        await renderer.close()
    assert not renderer.running
