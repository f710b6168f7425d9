"""Crawl politeness and honest failures, against scripted sites on 127.0.0.1 (no embedding model needed)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from pipeline_helpers import ScriptedSite, closed_port, page, serve, text

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest, PageFailure, PageSkipped
from crawlrag.models import Page

SettingsFactory = Callable[..., Settings]


async def crawl(settings: Settings, url: str, **options: Any) -> list[Any]:
    async with Crawler(settings) as crawler:
        return [result async for result in crawler.crawl(CrawlRequest(url, **options))]


async def test_robots_crawl_delay_spaces_requests_to_a_host(make_settings: SettingsFactory) -> None:
    links = [f"/p{i}.html" for i in range(3)]
    routes = {"/robots.txt": text("User-agent: *\nCrawl-delay: 1\n"), "/": page("Home", *links)}
    routes |= {link: page(f"Page {link}") for link in links}
    with serve(ScriptedSite(routes)) as site:
        results = await crawl(make_settings(max_crawl_delay_seconds=5), site.url("/"), max_depth=1)
    assert sum(isinstance(result, Page) for result in results) == 4
    times = sorted(site.times())
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Spaced on the crawler's side; arrival times at the server jitter by a few hundred ms on a busy machine.
    assert len(times) == 4 and sum(gaps) >= 2.7 and min(gaps) >= 0.6, gaps


async def test_crawl_delay_is_capped_by_the_setting(make_settings: SettingsFactory) -> None:
    routes = {"/robots.txt": text("User-agent: *\nCrawl-delay: 3600\n"), "/": page("Home", "/a.html")}
    routes["/a.html"] = page("A")
    with serve(ScriptedSite(routes)) as site:
        results = await crawl(make_settings(max_crawl_delay_seconds=0.5), site.url("/"), max_depth=1)
    times = sorted(site.times())
    assert sum(isinstance(result, Page) for result in results) == 2
    assert 0.4 <= times[1] - times[0] < 5


async def test_429_is_retried_after_retry_after(make_settings: SettingsFactory) -> None:
    ok = page("Busy page")

    def busy(count: int) -> tuple[int, dict[str, str], bytes]:
        return (429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down") if count == 0 else ok(count)

    with serve(ScriptedSite({"/busy.html": busy})) as site:
        results = await crawl(make_settings(), site.url("/busy.html"), max_depth=0)
    assert [type(result) for result in results] == [Page], results
    attempts = site.times("/busy.html")
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.9


async def test_503_retries_are_bounded(make_settings: SettingsFactory) -> None:
    def down(count: int) -> tuple[int, dict[str, str], bytes]:
        return 503, {"Retry-After": "0", "Content-Type": "text/plain"}, b"maintenance"

    with serve(ScriptedSite({"/down.html": down})) as site:
        results = await crawl(make_settings(http_retries=2), site.url("/down.html"), max_depth=0)
    assert results == [PageFailure(site.url("/down.html"), "HTTP 503")]
    assert site.count("/down.html") == 3  # the request and two retries


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(make_settings: SettingsFactory) -> None:
    def busy(count: int) -> tuple[int, dict[str, str], bytes]:
        return 429, {"Retry-After": "3600", "Content-Type": "text/plain"}, b"come back tomorrow"

    with serve(ScriptedSite({"/busy.html": busy})) as site:
        results = await crawl(make_settings(max_retry_after_seconds=5), site.url("/busy.html"), max_depth=0)
    assert results == [PageFailure(site.url("/busy.html"), "HTTP 429")] and site.count("/busy.html") == 1


async def test_fetches_to_one_host_are_capped(make_settings: SettingsFactory) -> None:
    links = [f"/p{i}.html" for i in range(8)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link}") for link in links}
    with serve(ScriptedSite(routes, delay=0.3)) as site:
        settings = make_settings(max_concurrent=10, max_concurrent_per_host=2, respect_robots_txt=False)
        results = await crawl(settings, site.url("/"), max_depth=1, max_concurrent=10)
    assert sum(isinstance(result, Page) for result in results) == 9
    assert site.max_in_flight == 2


async def test_user_agent_names_crawlrag_its_version_and_the_project(make_settings: SettingsFactory) -> None:
    with serve(ScriptedSite({"/": page("Home")})) as site:
        await crawl(make_settings(), site.url("/"), max_depth=0)
    agent = site.requests[-1][2]["User-Agent"]
    assert agent.startswith("crawlrag/") and "(+https://" in agent and agent.split("/")[1].split()[0][0].isdigit()


async def test_a_closed_port_is_a_connection_failure_not_a_robots_verdict(make_settings: SettingsFactory) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    results = await crawl(make_settings(respect_robots_txt=True), url, max_depth=0)
    assert len(results) == 1 and isinstance(results[0], PageFailure), results
    assert "connection refused" in results[0].reason
    assert not any(isinstance(result, PageSkipped) for result in results)
