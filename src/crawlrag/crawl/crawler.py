"""Crawl orchestration: what to fetch, in which order, how many at once, and what each result means.

What the start URL is decides the crawl:

* a sitemap (or sitemap index): the pages it lists are fetched, nothing is followed;
* a text file: stored as it is; for an `llms.txt` the same-site links it lists are fetched too (depth 1);
* a page: breadth-first over same-site links up to `max_depth`, level by level, so a page's depth is its
  shortest link distance from the start no matter which fetch finishes first.

At most `max_concurrent` fetches run at once (and MAX_CONCURRENT_PER_HOST to one host, spaced by the host's
robots.txt Crawl-delay). Results are yielded in the site's order, not in the order fetches finish: a finished
fetch waits for those before it, so which spelling of a page (an alias, a redirect, a canonical) is stored, and
under which URL, is the same on every crawl of an unchanged site. A fetch is only started while
`pages stored + fetches in flight < max_pages`, so the crawl never downloads pages it would have to throw away.
Closing or cancelling the iterator cancels the fetches in flight. A crawl that runs longer than
CRAWL_TIMEOUT_SECONDS stops: fetches in flight are cancelled and every URL not done is reported as skipped.
The stored-page lookups (`validators`, `fresh`) are blocking store calls: they run in worker threads.
With `fresh`, a sitemap page whose `<lastmod>` is not newer than the stored copy is not fetched at all.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import NamedTuple, TypeAlias
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from crawlrag.config import Settings
from crawlrag.crawl.browser import BrowserRenderer
from crawlrag.crawl.fetcher import FetchedDocument, Fetcher, FetchOutcome
from crawlrag.crawl.guard import NetworkPolicy, Resolver
from crawlrag.crawl.http import FetchError, HttpClient
from crawlrag.crawl.politeness import HostGate
from crawlrag.crawl.results import CrawlProgress, CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.robots import RobotsRules, RobotsUnavailableError
from crawlrag.crawl.sitemap import NotASitemapError, SitemapError, collect_sitemap
from crawlrag.crawl.urls import (
    is_llms_txt,
    normalize_url,
    page_key,
    passes_filters,
    site_key,
    source_id_for,
    url_kind,
)
from crawlrag.models import Page

log = logging.getLogger(__name__)

# At most this many URLs per page of MAX_PAGES are queued in one crawl. MAX_PAGES counts stored pages, so without
# this bound a site of failing or empty pages that each link to hundreds of new ones would grow the queue (and
# the fetches) until the crawl's time limit.
URL_BUDGET_PER_PAGE = 10
MIN_URL_BUDGET = 100


class Validators(NamedTuple):
    """What is stored of a page for a conditional request: its validators and, when recorded, its links (a page
    whose links are known is requested conditionally even where its links are needed: a 304 leads on to them)."""

    etag: str | None
    last_modified: str | None
    links: tuple[str, ...] | None = None


# A lookup may also answer a plain (etag, last_modified) pair.
ValidatorLookup: TypeAlias = Callable[[str], Validators | tuple[str | None, str | None] | None]
# fresh(url, lastmod): whether the stored copy of `url` is at least as new as its sitemap `<lastmod>`.
FreshLookup: TypeAlias = Callable[[str, datetime], bool]
CrawlResult: TypeAlias = Page | PageFailure | PageSkipped


class Crawler:
    """Fetches sites into `Page`s. Use `async with Crawler(settings) as crawler:`; it can run many crawls.

    `resolver` replaces the system's DNS lookups (tests point public-looking names at 127.0.0.1 with it).
    """

    def __init__(self, settings: Settings, *, resolver: Resolver | None = None) -> None:
        self._settings = settings
        self._policy = NetworkPolicy(settings, resolver=resolver)
        self._http: HttpClient | None = None
        self._renderer: BrowserRenderer | None = None
        self._fetcher: Fetcher | None = None

    async def __aenter__(self) -> Crawler:
        http = HttpClient(self._settings, self._policy)
        await http.__aenter__()
        self._http = http
        self._renderer = BrowserRenderer(self._settings, http)
        self._fetcher = Fetcher(self._settings, http, self._renderer)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        renderer, http = self._renderer, self._http
        self._renderer = self._http = self._fetcher = None
        try:
            if renderer is not None:
                await renderer.close()
        finally:
            if http is not None:
                await http.__aexit__(None, None, None)

    async def crawl(
        self,
        request: CrawlRequest,
        *,
        validators: ValidatorLookup | None = None,
        on_progress: Callable[[CrawlProgress], None] | None = None,
        fresh: FreshLookup | None = None,
    ) -> AsyncGenerator[CrawlResult, None]:
        """Yield one result per URL tried, in the site's order.

        Iterate it inside `contextlib.aclosing`: the fetches run in a task group entered in the caller's task,
        so a caller that fails or is cancelled while the crawl waits at a yield has to close it before leaving
        its own cancel scopes (anyio refuses to exit a scope that is not the innermost).

        `validators(url)` returns the stored `Validators` of a page (etag, last_modified and, when known, its
        links: then even a page whose links are needed is asked conditionally), or None; pages that did not
        change come back as `PageSkipped(url, "not modified")`, as do sitemap pages that `fresh` says are not
        newer than their `<lastmod>` (those are not requested). Raises `CrawlInputError` (before yielding
        anything) when the start URL is unusable or not allowed.
        """
        if self._fetcher is None or self._http is None:
            raise RuntimeError("Crawler.crawl() needs an entered crawler: use 'async with Crawler(settings)'")
        start = await self.check(request.url)
        robots = RobotsRules(
            self._http,
            self._settings.user_agent,
            enabled=self._settings.respect_robots_txt,
            max_crawl_delay=self._settings.max_crawl_delay_seconds,
        )
        run = _CrawlRun(
            self._settings, self._http, self._fetcher, robots, request, start, validators, on_progress, fresh
        )
        async with aclosing(run.results()) as results:
            async for result in results:
                yield result

    async def check(self, url: str) -> str:
        """The normalised URL, or CrawlInputError / BlockedURLError when it may not be crawled."""
        start = normalize_url(url)
        await self._policy.check(start)
        return start


# A finished fetch: the item, its outcome, and the stored validators of the URL its page would be filed under.
_Done: TypeAlias = tuple["_Item", FetchOutcome, "Validators | None"]


@dataclass(slots=True)
class _Item:
    url: str
    depth: int
    limit: int  # links of this page are followed while depth < limit
    # Where the URL sits in the site: its parent's order plus its link position. Fetching in this order (not in
    # the order fetches happen to finish) makes the pages that fit under max_pages the same on every crawl, so a
    # re-crawl refreshes the pages it stored instead of wandering off to others.
    order: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[int, tuple[int, ...]]:
        return (self.depth, self.order)


class _CrawlRun:
    """The state of one crawl."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        fetcher: Fetcher,
        robots: RobotsRules,
        request: CrawlRequest,
        start: str,
        validators: ValidatorLookup | None,
        on_progress: Callable[[CrawlProgress], None] | None,
        fresh: FreshLookup | None = None,
    ) -> None:
        self._settings = settings
        self._validators = validators
        self._on_progress = on_progress
        self._http = http
        self._fetcher = fetcher
        self._robots = robots
        self._request = request
        self._start = start
        self._source_id = source_id_for(start)
        self._sites = {site_key(start)}
        self._seen: set[str] = set()  # URLs queued, filtered out or reached through a redirect
        self._keys: set[str] = set()  # their `page_key`s: the first spelling of a page found is the one fetched
        self._claimed: set[str] = set()  # `page_key`s of final URLs (and canonicals) that already produced a result
        self._frontier: dict[str, _Item] = {}  # waiting to be fetched, by URL
        self._pending: dict[str, _Item] = {}  # fetches started and not yet handled, by URL
        self._finished: dict[str, _Done] = {}  # of those, the ones done, waiting for the fetches before them
        # Each fetch's own scope: the deadline cancels them without cancelling the task group, whose scope also
        # holds the consumer's code while this generator is suspended at a yield.
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._pages = self._failed = self._skipped = 0
        self._url_budget = max(URL_BUDGET_PER_PAGE * request.max_pages, MIN_URL_BUDGET)
        self._over_budget = False
        self._hosts = HostGate(settings.max_concurrent_per_host)
        self._fresh_lookup = fresh
        self._lastmod: dict[str, datetime] = {}  # sitemap <lastmod> by page URL

    async def results(self) -> AsyncGenerator[CrawlResult, None]:
        deadline = anyio.current_time() + self._settings.crawl_timeout_seconds
        send, receive = anyio.create_memory_object_stream[_Done](math.inf)
        # The fetches run in this task group; leaving the generator (done, closed or cancelled) cancels them.
        # GeneratorExit (the consumer closed the iterator at a yield) reaches the task group as its error.
        try:
            async with anyio.create_task_group() as fetches, send, receive:
                try:
                    with anyio.move_on_at(deadline):
                        seeded = await self._seed()
                    if anyio.current_time() >= deadline:
                        yield self._counted(PageFailure(self._start, self._time_limit_reason()))
                        return
                    for result in seeded:
                        yield self._counted(result)
                    while True:
                        expired = anyio.current_time() >= deadline
                        if not expired:
                            self._dispatch(fetches, send)
                            if not self._pending:
                                break
                            for done in await self._next_done(receive, deadline):
                                self._finished[done[0].url] = done
                        for item, outcome, stored in self._in_order(all_finished=expired):
                            for result in self._handle(item, outcome, stored):
                                yield self._counted(result)
                        if expired:
                            for result in self._expire():
                                yield self._counted(result)
                            break
                finally:
                    fetches.cancel_scope.cancel()
        except* GeneratorExit:
            pass  # closed by the consumer: the fetches in flight were cancelled

    @staticmethod
    async def _next_done(receive: MemoryObjectReceiveStream[_Done], deadline: float) -> list[_Done]:
        """Every fetch finished by now, waiting (until the deadline) for the first one."""
        done: list[_Done] = []
        with anyio.move_on_at(deadline):
            done.append(await receive.receive())
        while True:
            try:
                done.append(receive.receive_nowait())
            except anyio.WouldBlock:
                return done

    def _in_order(self, *, all_finished: bool = False) -> Iterator[_Done]:
        """Take the finished fetches no fetch still in flight comes before (`all_finished`: every one)."""
        while self._finished:
            first = min(self._finished.values(), key=lambda done: done[0].key)[0]
            if not all_finished and any(
                item.key < first.key for url, item in self._pending.items() if url not in self._finished
            ):
                return
            del self._pending[first.url]
            yield self._finished.pop(first.url)

    def _time_limit_reason(self) -> str:
        return f"crawl time limit reached (CRAWL_TIMEOUT_SECONDS={self._settings.crawl_timeout_seconds:g})"

    def _expire(self) -> list[CrawlResult]:
        """Stop at the crawl deadline: cancel what is in flight and report it, and what waits, as skipped."""
        in_flight = list(self._pending.values())
        self._pending.clear()
        for scope in self._scopes.values():
            scope.cancel()
        waiting = [item for item in self._frontier.values() if item.url not in self._claimed]
        self._frontier.clear()
        reason = self._time_limit_reason()
        return [PageSkipped(item.url, reason) for item in (*in_flight, *waiting)]

    async def _seed(self) -> list[CrawlResult]:
        start, request = self._start, self._request
        kind = url_kind(start)
        self._seen.add(start)
        self._keys.add(page_key(start))
        if kind == "sitemap":
            try:
                listing = await collect_sitemap(
                    self._http,
                    start,
                    max_urls=self._settings.max_sitemap_urls,
                    max_bytes=self._settings.max_response_bytes,
                    max_depth=self._settings.max_sitemap_depth,
                )
            except NotASitemapError:
                log.info("%s is not a sitemap; crawling it as a page", start)
            except (FetchError, SitemapError) as exc:
                return [PageFailure(start, f"sitemap could not be read: {exc}")]
            else:
                log.info("sitemap %s lists %d URLs", start, len(listing.urls))
                self._lastmod = listing.lastmod
                # A child sitemap that could not be read is a failure: the crawl may miss the pages it lists.
                problems: list[CrawlResult] = [
                    PageFailure(url, f"sitemap could not be read: {reason}") for url, reason in listing.problems
                ]
                return problems + [
                    skip
                    for position, url in enumerate(listing.urls)
                    if (skip := self._discover(url, 0, 0, (position,), report_other_site=True))
                ]
        # Text files are stored as they are; only an llms.txt leads on, one level, to the pages it lists.
        text_limit = min(1, request.max_depth) if is_llms_txt(start) else 0
        limit = text_limit if kind == "text" else request.max_depth
        self._frontier[start] = _Item(start, 0, limit)
        return []

    def _discover(
        self, url: str, depth: int, limit: int, order: tuple[int, ...], *, report_other_site: bool = False
    ) -> PageSkipped | None:
        waiting = self._frontier.get(url)
        if waiting is not None and (depth, order) < waiting.key:
            waiting.depth, waiting.order = depth, order  # found again from a page earlier in the site's order
        if url in self._seen or page_key(url) in self._keys:
            return None
        if site_key(url) not in self._sites:
            return PageSkipped(url, "different site") if report_other_site else None
        if len(self._seen) >= self._url_budget:
            if not self._over_budget:
                self._over_budget = True
                log.warning("crawl of %s: not queueing more than %d URLs", self._start, self._url_budget)
            return None
        self._seen.add(url)
        self._keys.add(page_key(url))
        if not passes_filters(url, self._request.include, self._request.exclude):
            return PageSkipped(url, "excluded")
        self._frontier[url] = _Item(url, depth, limit, order)
        return None

    def _dispatch(self, fetches: TaskGroup, send: MemoryObjectSendStream[_Done]) -> None:
        request = self._request
        while (
            self._frontier
            and len(self._pending) - len(self._finished) < request.max_concurrent
            and self._pages + len(self._pending) < request.max_pages
        ):
            item = min(self._frontier.values(), key=lambda waiting: waiting.key)
            # Level barrier: a deeper page waits until every shallower fetch is done (exact BFS depths).
            if any(other.depth < item.depth for other in self._pending.values()):
                break
            del self._frontier[item.url]
            if page_key(item.url) in self._claimed:  # already reached through a redirect or another spelling
                continue
            self._pending[item.url] = item
            self._scopes[item.url] = anyio.CancelScope()
            fetches.start_soon(self._process, item, send.clone(), name=f"crawlrag fetch {item.url}")

    async def _process(self, item: _Item, send: MemoryObjectSendStream[_Done]) -> None:
        with self._scopes[item.url], send:
            stored = None
            if await self._fresh(item.url):  # unchanged by its sitemap <lastmod>: not even a conditional request
                outcome = FetchOutcome(item.url, item.url, PageSkipped(item.url, "not modified"))
            else:
                stored = await self._stored(item.url)
                # Conditional requests where the body is not needed to find more links, or the links are stored.
                leaf = item.depth >= item.limit
                conditional = stored if stored is not None and (leaf or stored.links is not None) else None
                outcome = await self._fetch(item, conditional)
                if conditional is not None and conditional.links and _not_modified(outcome):
                    outcome = replace(outcome, links=conditional.links)
            if isinstance(outcome.result, FetchedDocument):
                # The stored copy, if any, is filed under the URL the redirect led to (or the page's canonical).
                filed_under = self._canonical_of(outcome.result) or outcome.final_url
                if filed_under != item.url:
                    stored = await self._stored(filed_under)
            await send.send((item, outcome, stored))
        self._scopes.pop(item.url, None)

    async def _fetch(self, item: _Item, conditional: Validators | None) -> FetchOutcome:
        try:
            try:
                if not await self._robots.allowed(item.url):
                    return FetchOutcome(item.url, item.url, PageSkipped(item.url, "robots.txt"))
            except RobotsUnavailableError as exc:  # the host is down: a failure, not a robots verdict
                return FetchOutcome(item.url, item.url, PageFailure(item.url, str(exc)))
            host = urlsplit(item.url).netloc
            async with self._hosts.slot(host):
                await self._hosts.wait_turn(host, await self._robots.crawl_delay(item.url))
                validators = None if conditional is None else (conditional.etag, conditional.last_modified)
                return await self._fetcher.fetch(item.url, validators=validators)
        except Exception as exc:  # one broken page must not end the crawl
            log.exception("unexpected error while crawling %s", item.url)
            return FetchOutcome(item.url, item.url, PageFailure(item.url, f"internal error: {exc!r}"))

    def _handle(self, item: _Item, outcome: FetchOutcome, stored: Validators | None) -> Iterator[CrawlResult]:
        final, result = outcome.final_url, outcome.result
        if page_key(final) in self._claimed:  # two URLs redirected to one page, or a page fetched while its alias was
            yield PageSkipped(item.url, f"duplicate of {final}, already crawled")
            return
        if final != item.url:
            if item.url == self._start:
                self._sites.add(site_key(final))  # example.com -> docs.example.com: follow the new host
            elif site_key(final) not in self._sites:
                yield PageSkipped(item.url, f"redirects to another site: {final}")
                return
        self._claimed.add(page_key(final))
        self._seen.add(final)
        if isinstance(result, FetchedDocument):
            url = self._canonical_url(result)
            if url is None:
                yield PageSkipped(item.url, f"duplicate of {result.canonical}, already crawled")
            elif result.noindex:
                yield PageSkipped(url, "noindex")
            elif stored is not None and _unchanged(stored, result):
                yield PageSkipped(url, "not modified")
            else:
                yield Page(
                    url=url,
                    source_id=self._source_id,
                    title=result.title or result.url,
                    markdown=result.markdown,
                    content_type=result.content_type,
                    status_code=result.status_code,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    kind=result.kind,
                    convert_seconds=result.convert_seconds,
                    links=outcome.links,
                )
        else:
            yield result
        if item.depth < item.limit and self._pages < self._request.max_pages:
            for position, link in enumerate(outcome.links):
                skipped = self._discover(link, item.depth + 1, item.limit, (*item.order, position))
                if skipped is not None:
                    yield skipped

    def _canonical_of(self, document: FetchedDocument) -> str | None:
        """The same-site canonical URL a page names, when it is another spelling than the URL it was fetched from."""
        canonical = document.canonical
        if canonical is None or site_key(canonical) not in self._sites or page_key(canonical) == page_key(document.url):
            return None
        return canonical

    def _canonical_url(self, document: FetchedDocument) -> str | None:
        """The URL to store a page under: its same-site canonical when it has one; None when that is taken."""
        canonical = self._canonical_of(document)
        if canonical is None:
            return document.url
        if page_key(canonical) in self._claimed:
            return None
        self._claimed.add(page_key(canonical))
        self._seen.add(canonical)
        return canonical

    async def _fresh(self, url: str) -> bool:
        lastmod = self._lastmod.get(url)
        if self._fresh_lookup is None or lastmod is None:
            return False
        return await anyio.to_thread.run_sync(self._fresh_lookup, url, lastmod)

    async def _stored(self, url: str) -> Validators | None:
        if self._validators is None:
            return None
        found = await anyio.to_thread.run_sync(self._validators, url)
        if found is None or isinstance(found, Validators):
            return found
        return Validators(found[0], found[1])

    def _counted(self, result: CrawlResult) -> CrawlResult:
        # An unchanged page is still one of the site's pages: counting it keeps a re-crawl to the same page set
        # (and the same max_pages budget) as the crawl it refreshes.
        if isinstance(result, Page) or (isinstance(result, PageSkipped) and result.reason == "not modified"):
            self._pages += 1
        elif isinstance(result, PageFailure):
            self._failed += 1
        else:
            self._skipped += 1
        if self._on_progress is not None:
            self._on_progress(
                CrawlProgress(
                    discovered=len(self._seen),
                    fetched=self._pages,
                    failed=self._failed,
                    skipped=self._skipped,
                    queued=len(self._frontier) + len(self._pending),
                )
            )
        return result


def _not_modified(outcome: FetchOutcome) -> bool:
    return isinstance(outcome.result, PageSkipped) and outcome.result.reason == "not modified"


def _unchanged(stored: Validators, document: FetchedDocument) -> bool:
    etag, last_modified = stored.etag, stored.last_modified
    if etag and document.etag:
        return etag.removeprefix("W/") == document.etag.removeprefix("W/")
    if last_modified and document.last_modified:
        return last_modified == document.last_modified
    return False
