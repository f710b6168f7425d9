"""Refresh: crawl a source again with the crawls it was made with, and remove the pages that are gone.

Every completed crawl is recorded with the source it stored pages of (`Store.record_crawl`: start URL and
options). A refresh runs each of them again, cheaply: conditional requests (ETag / Last-Modified) where the
page's links are not needed, sitemap `<lastmod>`s (a page not newer than its stored copy is not requested), and
content hashes (unchanged markdown is neither chunked nor embedded again). Then pages of the source that are gone
are removed in one transaction (`Store.delete_pages`):

* pages that answered 404 or 410;
* pages no crawl reached any more (unlinked, or no longer in the sitemap), but only when every crawl saw the whole
  site: no page failed otherwise (time-out, 5xx, network error: the pages behind it are unknown), no time limit
  and no max_pages stop, and more than the start page was reached.

A refresh whose start page fails (the site is down, the sitemap cannot be read) removes nothing. A page that
merely failed is never removed, and a page skipped because its sitemap `<lastmod>` says it is unchanged counts as
reached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace

import anyio

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlInputError
from crawlrag.crawl.urls import page_key, source_id_for
from crawlrag.embeddings import Embedder
from crawlrag.local import is_local_target
from crawlrag.models import JobStatus
from crawlrag.pipeline.indexer import Indexer
from crawlrag.pipeline.options import REFRESH_KIND, CrawlOptions
from crawlrag.pipeline.report import IndexProgress, IndexReport
from crawlrag.sources.scope import ScopeError
from crawlrag.sources.selection import select_versions
from crawlrag.sources.versions import LATEST, source_key
from crawlrag.store import Store

log = logging.getLogger(__name__)

# Answers that say a page is gone for good; every other failure leaves the page where it is.
GONE_STATUSES = frozenset({404, 410})
# Jobs looked at for the crawls of a source recorded before crawls were recorded with their source.
_JOBS_LOOKED_AT = 1000


class RefreshInputError(CrawlInputError):
    """A refresh that cannot start: an unknown source, or one whose crawls are not known."""


def select_sources(store: Store, source: str | None = None, version: str | None = None) -> list[str]:
    """The stored source keys a refresh covers: every version of the site `source` (or only `version`), or every
    source when `source` is None."""
    if source is None:
        if version is not None:
            raise RefreshInputError("a version can only be refreshed with its source")
        return [info.source_id for info in store.list_sources()]
    try:
        targets, _ = select_versions(store, source, version)
    except ScopeError as exc:
        raise RefreshInputError(f"nothing to refresh: {exc}") from None
    return [info.source_id for info in targets]


def source_crawls(store: Store, settings: Settings, source_id: str) -> list[CrawlOptions]:
    """The crawls a source was made with, as options to run again; sources crawled before crawls were recorded
    fall back to their newest completed crawl jobs."""
    recorded = [(crawl.url, crawl.options) for crawl in store.source_crawls(source_id)]
    if not recorded:
        seen: set[str] = set()
        for job in store.list_jobs(_JOBS_LOOKED_AT):  # newest first
            if job.status is not JobStatus.COMPLETED or job.options.get("kind") == REFRESH_KIND:
                continue
            if job.url in seen or is_local_target(job.url):
                continue
            if _source_of_url(job.url, job.options.get("version", LATEST)) == source_id:
                seen.add(job.url)
                recorded.append((job.url, job.options))
    if not recorded:
        raise RefreshInputError(
            f"no crawl of source {source_id!r} is recorded, so it cannot be refreshed: crawl it again once"
        )
    # Whatever a past crawl was forced to do, a refresh only re-processes what changed.
    return [replace(CrawlOptions.from_stored(url, options, settings), force=False) for url, options in recorded]


def refresh_options(store: Store, settings: Settings, source_id: str) -> CrawlOptions:
    """The options of a refresh job of `source_id` (its URL is the source's first crawl, for job lists)."""
    first = source_crawls(store, settings, source_id)[0]
    return CrawlOptions.build(
        settings,
        url=first.url,
        max_depth=first.max_depth,
        max_pages=first.max_pages,
        max_concurrent=first.max_concurrent,
        kind=REFRESH_KIND,
        source_id=source_id,
        any_local=True,
    )


def refresh_plans(
    store: Store, settings: Settings, source: str | None = None, version: str | None = None
) -> tuple[list[CrawlOptions], list[str]]:
    """Refresh job options for the selected sources, and why selected sources cannot be refreshed.

    A source named by the caller that cannot be refreshed raises RefreshInputError; with every source selected,
    those without a recorded crawl are left out and named in the second list."""
    plans, problems = [], []
    for source_id in select_sources(store, source, version):
        try:
            plans.append(refresh_options(store, settings, source_id))
        except CrawlInputError as exc:
            if source is not None:
                raise
            problems.append(str(exc))
    return plans, problems


def job_source(options: CrawlOptions) -> str | None:
    """The source a job crawls or refreshes (None for a local target without a given source id)."""
    if options.kind == REFRESH_KIND or is_local_target(options.url):
        return options.source_id
    return _source_of_url(options.url, options.version)


def _source_of_url(url: str, version: str) -> str | None:
    """The source key pages of a crawl from `url` are filed under."""
    try:
        return source_key(source_id_for(url), version)
    except CrawlInputError:
        return None


class Refresher:
    """Runs one refresh job: the source's crawls one after the other, then the removal of what is gone."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder, crawler: Crawler) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.crawler = crawler

    async def run(
        self, options: CrawlOptions, on_progress: Callable[[IndexProgress], None] | None = None
    ) -> IndexReport:
        source_id = options.source_id
        if options.kind != REFRESH_KIND or source_id is None:
            raise RefreshInputError("a refresh job needs the source to refresh")
        notify = on_progress or (lambda progress: None)
        started = time.perf_counter()
        try:
            crawls = await anyio.to_thread.run_sync(source_crawls, self.store, self.settings, source_id)
            stored = await anyio.to_thread.run_sync(self.store.source_page_urls, source_id)
            report = IndexReport(IndexProgress(max_pages=sum(crawl.max_pages for crawl in crawls)))
            parts: list[tuple[CrawlOptions, IndexReport]] = []
            for crawl in crawls:
                indexer = Indexer(self.settings, self.store, self.embedder, self.crawler)
                # Progress of this crawl on top of the crawls before it.
                before = replace(report.progress)
                part = await indexer.run(
                    crawl, lambda progress, before=before: notify(_plus(before, progress)), refresh=True
                )
                parts.append((crawl, part))
                _merge(report, part)
            remove, report.removal_skipped = plan_removals(stored, parts)
            if report.removal_skipped:
                log.info("refresh of %s keeps pages it did not reach: %s", source_id, report.removal_skipped)
            if remove:
                report.progress.removed = await anyio.to_thread.run_sync(self.store.delete_pages, source_id, remove)
        finally:
            # Also after a failure: a site that is down is tried again one interval later, not at once.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.mark_refreshed, source_id)
        report.seconds = time.perf_counter() - started
        notify(report.progress)
        return report


def plan_removals(
    stored: Sequence[str], parts: Sequence[tuple[CrawlOptions, IndexReport]]
) -> tuple[list[str], str | None]:
    """The stored URLs to remove after these crawls, and why pages not reached are kept (None: they go too)."""
    for crawl, part in parts:
        start = page_key(crawl.url)
        failed_start = next((f for f in part.failures if page_key(f.url) == start), None)
        if failed_start is not None or not part.reached:
            why = failed_start.reason if failed_start is not None else "nothing was reached"
            return [], f"the crawl of {crawl.url} failed at its start ({why}): nothing was removed"
    failed = {page_key(failure.url): failure for _, part in parts for failure in part.failures}
    reached = {page_key(url) for _, part in parts for url in part.reached}
    keep = next((reason for crawl, part in parts if (reason := _incomplete(crawl, part))), None)
    if keep is None and len(reached) <= len(parts) < len(stored):
        keep = "no page but the start page was reached"  # a start page that lost its links: likely a broken site
    remove = []
    for url in stored:
        key = page_key(url)
        if key in reached:
            continue
        failure = failed.get(key)
        gone = failure is not None and failure.status in GONE_STATUSES
        if gone or (failure is None and keep is None):
            remove.append(url)
    return remove, keep


def _incomplete(crawl: CrawlOptions, part: IndexReport) -> str | None:
    """Why this crawl may not have seen every page of its site, or None."""
    if part.time_limit_reached or any(s.reason.startswith("crawl time limit") for s in part.skipped):
        return f"the crawl of {crawl.url} reached its time limit"
    failures = [f for f in part.failures if f.status not in GONE_STATUSES]
    if failures:
        return f"{len(failures)} page(s) failed, e.g. {failures[0].url}: {failures[0].reason}"
    if len(part.reached) >= crawl.max_pages:
        return f"the crawl of {crawl.url} stopped at max_pages={crawl.max_pages}"
    return None


_COUNTERS = tuple(field.name for field in fields(IndexProgress) if field.name != "max_pages")


def _plus(base: IndexProgress, more: IndexProgress) -> IndexProgress:
    total = replace(base)
    for name in _COUNTERS:
        setattr(total, name, getattr(base, name) + getattr(more, name))
    return total


def _merge(report: IndexReport, part: IndexReport) -> None:
    report.progress = _plus(report.progress, part.progress)
    report.failures += part.failures
    report.skipped += part.skipped
    report.source_ids |= part.source_ids
    report.reached |= part.reached
    for source_id, urls in part.pages_by_source.items():
        report.pages_by_source[source_id] += urls
    for name, seconds in part.timings.items():
        report.timings[name] += seconds
    report.llm = part.llm or report.llm
    report.time_limit_reached = report.time_limit_reached or part.time_limit_reached
