"""The web UI in a real headless Chromium against a real `crawlrag serve --transport http` without a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from ui_helpers import WAIT_MS, ConsoleErrors, UiServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(browser: Any, open_server: UiServer) -> Iterator[tuple[Any, ConsoleErrors]]:
    context = browser.new_context(base_url=open_server.base)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors = ConsoleErrors(open_server.base)
    errors.watch(tab)
    try:
        yield tab, errors
    finally:
        context.close()


def start_crawl(tab: Any, url: str, depth: int, pages: int) -> str:
    """Fill in Add a crawl; returns the new job's row id on the Jobs page it lands on."""
    tab.goto("/crawl")
    tab.get_by_label("Start URL").fill(url)
    tab.get_by_label("Max depth").fill(str(depth))
    tab.get_by_label("Max pages").fill(str(pages))
    tab.get_by_role("button", name="Start crawl").click()
    tab.wait_for_url(re.compile(r"/jobs\?started="))
    job_id = tab.url.rsplit("=", 1)[1]
    return f"#job-{job_id}"


def test_crawl_watch_it_complete_search_and_open_a_result(
    page: tuple[Any, ConsoleErrors], open_server: UiServer, site_url: str
) -> None:
    tab, errors = page
    open_server.wait_for_embedder()
    tab.goto("/")
    assert "Nothing is indexed yet" in tab.inner_text("main")
    tab.get_by_role("link", name="Add a crawl").first.click()
    row = start_crawl(tab, site_url + "/guide/", depth=1, pages=20)

    # Live progress: the row turns completed while the page stays the same document (no reload).
    tab.evaluate("window.__sameDocument = true")
    tab.locator(f"{row} [data-field=status]").filter(has_text="completed").wait_for()
    assert tab.evaluate("window.__sameDocument === true")
    pages_text = tab.inner_text(f"{row} [data-field=pages]")
    done = int(pages_text.split()[0])
    assert done >= 3, pages_text
    assert tab.locator(f"{row} form[data-action=cancel]").is_hidden()
    assert "Live: updated" in tab.inner_text("#live-status")
    assert tab.inner_text("#live-announce") == f"Crawl of {site_url}/guide/ is completed."  # for screen readers

    tab.get_by_role("link", name="Sources").click()
    source = site_url.removeprefix("http://")
    source_row = tab.locator(f"tr[data-source='{source}']")
    assert int(source_row.locator("td.num").first.inner_text()) >= 3  # pages (after the version)
    assert source_row.get_by_role("button", name=f"Refresh {source}").is_visible()

    tab.get_by_role("link", name="Search", exact=True).first.click()
    tab.get_by_label("Query").fill("how to install the example project")
    tab.get_by_label("Mode").select_option("hybrid")
    tab.get_by_label("Source").select_option(source)
    tab.get_by_role("button", name="Search").click()
    tab.wait_for_url(re.compile(r"/search\?query="))
    assert "Mode hybrid" in tab.inner_text("#search-meta")
    assert "vector" in tab.inner_text("#search-meta")  # the timings of each side
    first = tab.locator(".result").first
    assert first.locator("dd").first.inner_text() != "—"  # the fused score
    link = first.locator("h3 a")
    href = link.get_attribute("href")
    assert href is not None and href.startswith(site_url)
    link.click()
    tab.wait_for_url(href)
    assert tab.url == href
    assert not errors.seen, errors.seen


def test_cancel_and_resume_a_running_job(
    page: tuple[Any, ConsoleErrors], open_server: UiServer, hanging_site_url: str
) -> None:
    tab, errors = page
    row = start_crawl(tab, hanging_site_url + "/slow/", depth=1, pages=10)
    status = tab.locator(f"{row} [data-field=status]")
    status.filter(has_text="running").wait_for()

    tab.locator(row).get_by_role("button", name=re.compile("^Cancel job")).click()
    tab.wait_for_url(re.compile(r"/jobs$"))
    status.filter(has_text="cancelled").wait_for()
    resume = tab.locator(row).get_by_role("button", name=re.compile("^Resume job"))
    resume.wait_for()
    assert tab.locator(f"{row} form[data-action=cancel]").is_hidden()

    resume.click()  # the same job runs again, under its id
    status.filter(has_text="running").wait_for()
    tab.locator(row).get_by_role("button", name=re.compile("^Cancel job")).click()
    status.filter(has_text="cancelled").wait_for()
    assert not errors.seen, errors.seen


def test_delete_a_source_after_confirming(
    page: tuple[Any, ConsoleErrors], open_server: UiServer, hanging_site_url: str
) -> None:
    tab, errors = page
    row = start_crawl(tab, hanging_site_url + "/api/", depth=0, pages=1)
    tab.locator(f"{row} [data-field=status]").filter(has_text="completed").wait_for()
    source = hanging_site_url.removeprefix("http://")
    tab.goto("/")
    tab.get_by_role("link", name=f"Delete {source}").click()
    assert tab.get_by_role("heading", name=f"Delete {source}?").is_visible()
    tab.get_by_role("button", name=f"Delete {source}").click()
    tab.wait_for_url(re.compile(r"/\?deleted="))
    assert f"Source {source} was deleted" in tab.inner_text("main")
    assert tab.locator(f"tr[data-source='{source}']").count() == 0
    assert not errors.seen, errors.seen


def test_bad_crawl_input_keeps_the_form(page: tuple[Any, ConsoleErrors], open_server: UiServer) -> None:
    tab, errors = page
    tab.goto("/crawl")
    tab.get_by_label("Start URL").fill("ftp://example.com/")
    tab.get_by_role("button", name="Start crawl").click()
    tab.wait_for_load_state()
    assert "Error:" in tab.inner_text("[role=alert]")
    assert tab.get_by_label("Start URL").input_value() == "ftp://example.com/"
    # The 400 answer itself is logged by Chromium as a failed resource; nothing else may be.
    assert all("400" in error for error in errors.seen), errors.seen


def test_health_page(page: tuple[Any, ConsoleErrors], open_server: UiServer) -> None:
    tab, errors = page
    open_server.wait_for_embedder()
    tab.goto("/status")
    embedder = tab.locator("section", has=tab.get_by_role("heading", name="Embedder"))
    text = embedder.inner_text()
    assert "ready" in text and "cpu" in text and "all-MiniLM-L6-v2" in text
    assert "Off" in tab.locator("section", has=tab.get_by_role("heading", name="Reranker")).inner_text()
    assert tab.locator("#latency").is_visible()
    assert not errors.seen, errors.seen
