"""The crawl scheduler against a fake fetcher: concurrency, page budget and breadth-first depths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from crawl_helpers import crawl_all

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.crawl.fetcher import FetchedDocument, Fetcher, FetchOutcome
from crawlrag.models import Page

ROOT = "http://docs.test/"


@dataclass
class FakeSite:
    """URL -> (seconds to answer, links). Records what was fetched and how many fetches overlapped."""

    pages: Mapping[str, tuple[float, tuple[str, ...]]]
    fetched: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def fetch(self, url: str) -> FetchOutcome:
        self.fetched.append(url)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay, links = self.pages[url]
            await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        document = FetchedDocument(
            url=url,
            status_code=200,
            content_type="text/html",
            title=url,
            markdown=f"content of {url}",
            etag=None,
            last_modified=None,
            rendered=False,
        )
        return FetchOutcome(url, url, document, links)


def tree(fanout: int, depth: int) -> dict[str, tuple[float, tuple[str, ...]]]:
    pages: dict[str, tuple[float, tuple[str, ...]]] = {}

    def add(url: str, level: int) -> None:
        children = tuple(f"{url}c{index}/" for index in range(fanout)) if level < depth else ()
        pages[url] = (0.002 * (len(pages) % 5), children)
        for child in children:
            add(child, level + 1)

    add(ROOT, 0)
    return pages


@pytest.fixture
def fake_site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[FakeSite], FakeSite]]:
    def install(site: FakeSite) -> FakeSite:
        async def fetch(self: Fetcher, url: str, *, validators: object = None) -> FetchOutcome:
            return await site.fetch(url)

        monkeypatch.setattr(Fetcher, "fetch", fetch)
        return site

    yield install


@pytest.fixture
def settings(crawl_settings: Callable[..., Settings]) -> Settings:
    return crawl_settings(respect_robots_txt=False)


def depth(url: str) -> int:
    return url.removeprefix(ROOT).count("/")


async def test_concurrency_is_bounded(fake_site: Callable[[FakeSite], FakeSite], settings: Settings) -> None:
    site = fake_site(FakeSite(tree(fanout=6, depth=2)))
    async with Crawler(settings) as crawler:
        results = await crawl_all(crawler, CrawlRequest(ROOT, max_depth=2, max_concurrent=3))
    assert len(results) == 1 + 6 + 36
    assert site.max_in_flight == 3


async def test_page_budget_is_not_overfetched(fake_site: Callable[[FakeSite], FakeSite], settings: Settings) -> None:
    site = fake_site(FakeSite(tree(fanout=5, depth=3)))
    async with Crawler(settings) as crawler:
        results = await crawl_all(crawler, CrawlRequest(ROOT, max_depth=3, max_pages=20, max_concurrent=8))
    assert len([result for result in results if isinstance(result, Page)]) == 20
    assert len(site.fetched) == 20


async def test_fetch_order_is_breadth_first(fake_site: Callable[[FakeSite], FakeSite], settings: Settings) -> None:
    site = fake_site(FakeSite(tree(fanout=3, depth=3)))
    async with Crawler(settings) as crawler:
        await crawl_all(crawler, CrawlRequest(ROOT, max_depth=3, max_concurrent=5))
    depths = [depth(url) for url in site.fetched]
    assert depths == sorted(depths)
    assert len(site.fetched) == len(set(site.fetched)) == 1 + 3 + 9 + 27


async def test_depth_is_the_shortest_link_distance(
    fake_site: Callable[[FakeSite], FakeSite], settings: Settings
) -> None:
    # X is two links from the start through the slow page A, three through the fast pages B and C.
    # Its child Y (depth 3) must be crawled at max_depth 3, however the fetches interleave.
    a, b, c, x, y = (ROOT + name for name in ("a", "b", "c", "x", "y"))
    site = fake_site(
        FakeSite(
            {
                ROOT: (0, (a, b)),
                a: (0.2, (x,)),
                b: (0, (c,)),
                c: (0, (x,)),
                x: (0, (y,)),
                y: (0, ()),
            }
        )
    )
    async with Crawler(settings) as crawler:
        await crawl_all(crawler, CrawlRequest(ROOT, max_depth=3))
    assert y in site.fetched


async def test_the_page_set_under_max_pages_does_not_depend_on_timing(
    fake_site: Callable[[FakeSite], FakeSite], settings: Settings
) -> None:
    """Fetches finish in a different order each time; the pages kept under the budget must stay the same."""
    pages = tree(fanout=4, depth=3)
    chosen = []
    for seed in range(3):
        # Answer times shuffled per run, so links are discovered in a different order each time.
        timed = {url: (0.001 * ((hash(url) + seed * 7919) % 9), links) for url, (_, links) in pages.items()}
        site = fake_site(FakeSite(timed))
        async with Crawler(settings) as crawler:
            results = await crawl_all(crawler, CrawlRequest(ROOT, max_depth=3, max_pages=30, max_concurrent=6))
        chosen.append({result.url for result in results if isinstance(result, Page)})
        assert len(site.fetched) == 30
    assert chosen[0] == chosen[1] == chosen[2]
