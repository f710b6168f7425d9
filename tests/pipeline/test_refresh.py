"""Refresh: a changed site's pages are added, re-indexed and removed; a site that fails removes nothing.

Every test runs on SQLite and on PostgreSQL, with sites served on 127.0.0.1 and the real embedding model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from refresh_site import ChangingSite, doc, serve_changing

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler
from crawlrag.embeddings import LocalEmbedder
from crawlrag.models import JobStatus, utcnow
from crawlrag.pipeline.jobs import Job, JobManager
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.refresh import RefreshInputError, select_sources
from crawlrag.pipeline.refresh_jobs import start_refresh, start_refreshes
from crawlrag.sources.versions import source_key

SettingsFactory = Callable[..., Settings]
Submit = Callable[[JobManager], Awaitable[Job]]


def docs_site(tag: str) -> ChangingSite:
    return ChangingSite(
        {
            "/": doc(f"{tag} home", f"The {tag} documentation starts here.", "/a.html", "/b.html", "/c.html"),
            "/a.html": doc("Alpha", f"Alpha explains the {tag} settings: quokkaoriginal values are the default."),
            "/b.html": doc("Beta", f"Beta is the old {tag} guide about the wombatremoved command line tool."),
            "/c.html": doc("Gamma", f"Gamma covers {tag} installation on every supported platform."),
        }
    )


@pytest.fixture
def settings(make_settings: SettingsFactory, database_url: str) -> Settings:
    return make_settings(database_url=database_url, respect_robots_txt=False, browser="never")


async def run_jobs(settings: Settings, embedder: LocalEmbedder, *submits: Submit) -> list[Job]:
    """Run jobs one after the other in a job manager of their own, as `crawlrag crawl` and a server do."""
    context = AppContext.create(settings, embedder=embedder)
    done = []
    try:
        async with (
            Crawler(settings) as crawler,
            JobManager(settings, context.store, context.embedder, crawler, max_running=1) as jobs,
        ):
            for submit in submits:
                job = await submit(jobs)
                await job.done.wait()
                done.append(job)
    finally:
        context.close()
    return done


def crawl(settings: Settings, url: str, **options: Any) -> Submit:
    async def submit(jobs: JobManager) -> Job:
        return await jobs.submit(CrawlOptions.build(settings, url=url, **({"max_depth": 2} | options)))

    return submit


def refresh(source_id: str) -> Submit:
    async def submit(jobs: JobManager) -> Job:
        return await start_refresh(jobs, source_id)

    return submit


def found(settings: Settings, embedder: LocalEmbedder, word: str, source_id: str | None = None) -> set[str]:
    """URLs whose chunks match `word` by keyword."""
    context = AppContext.create(settings, embedder=embedder)
    try:
        store = context.store
        return {hit.url for hit in store.keyword_search(word, 10, source_id)}
    finally:
        context.close()


def nearest(settings: Settings, embedder: LocalEmbedder, text: str, source_id: str | None = None) -> list[str]:
    context = AppContext.create(settings, embedder=embedder)
    try:
        return [hit.url for hit in context.store.vector_search(embedder.embed_query(text), 20, source_id)]
    finally:
        context.close()


def report(job: Job) -> dict[str, Any]:
    assert job.record.status is JobStatus.COMPLETED, job.record.error
    assert job.report is not None
    return job.report.to_dict()


async def test_refresh_adds_changed_pages_removes_gone_ones_and_leaves_other_sources(
    settings: Settings, embedder: LocalEmbedder
) -> None:
    with serve_changing(docs_site("first")) as site, serve_changing(docs_site("second")) as other:
        crawls = crawl(settings, site.url("/")), crawl(settings, other.url("/"))
        first, second = await run_jobs(settings, embedder, *crawls)
        assert report(first)["pages_added"] == 4 and report(second)["pages_added"] == 4
        other_before = nearest(settings, embedder, "the second guide about the wombatremoved tool", other.source_id)

        site.pages["/a.html"] = doc("Alpha", "Alpha explains the first settings: platypusrewritten values now apply.")
        del site.pages["/b.html"]
        site.pages["/d.html"] = doc("Delta", "Delta is a new page about the echidnaadded plugin system.")
        site.pages["/"] = doc("first home", "The first documentation starts here.", "/a.html", "/c.html", "/d.html")
        (refreshed,) = await run_jobs(settings, embedder, refresh(site.source_id))

    result = report(refreshed)
    assert result["pages_added"] == 1  # /d.html
    assert result["pages_changed"] >= 1  # /a.html (and the home page, whose links changed)
    assert result["pages_removed"] == 1  # /b.html
    assert result["pages_unchanged"] == 1  # /c.html: answered 304 to the conditional request
    assert refreshed.record.options["kind"] == "refresh" and refreshed.record.options["source_id"] == site.source_id

    assert found(settings, embedder, "quokkaoriginal") == {other.url("/a.html")}
    assert found(settings, embedder, "wombatremoved", site.source_id) == set()
    assert found(settings, embedder, "platypusrewritten") == {site.url("/a.html")}
    assert found(settings, embedder, "echidnaadded") == {site.url("/d.html")}
    assert site.url("/b.html") not in nearest(settings, embedder, "Beta is the old first guide about wombatremoved")
    # The other source is untouched: its pages are still there, found the same way.
    assert found(settings, embedder, "wombatremoved") == {other.url("/b.html")}
    assert nearest(settings, embedder, "the second guide about the wombatremoved tool", other.source_id) == other_before
    context = AppContext.create(settings, embedder=embedder)
    try:
        pages = {info.source_id: info.pages for info in context.store.list_sources()}
        stored = context.store.source_page_urls(site.source_id)
    finally:
        context.close()
    assert pages == {site.source_id: 4, other.source_id: 4}
    assert sorted(stored) == sorted(site.url(path) for path in ("/", "/a.html", "/c.html", "/d.html"))


async def test_a_site_that_is_down_or_failing_during_a_refresh_loses_no_page(
    settings: Settings, embedder: LocalEmbedder
) -> None:
    with serve_changing(docs_site("down")) as site:
        (crawled,) = await run_jobs(settings, embedder, crawl(settings, site.url("/")))
        assert report(crawled)["pages_added"] == 4

        site.status = 500  # every request, the start page included
        (server_error,) = await run_jobs(settings, embedder, refresh(site.source_id))
        site.status = None
        # One page fails and one is unlinked: what lay behind the failure is unknown, so nothing goes.
        site.failing = {"/a.html"}
        site.pages["/"] = doc("down home", "The down documentation.", "/a.html", "/c.html")
        (partial,) = await run_jobs(settings, embedder, refresh(site.source_id))
        site.failing = set()
        # A page answering 404 is gone even when the crawl is incomplete otherwise.
        site.failing = {"/c.html"}
        del site.pages["/a.html"]
        (gone,) = await run_jobs(settings, embedder, refresh(site.source_id))
    (stopped,) = await run_jobs(settings, embedder, refresh(site.source_id))  # the server is gone

    assert server_error.record.status is JobStatus.FAILED and "HTTP 500" in (server_error.record.error or "")
    assert server_error.report is not None and server_error.report.progress.removed == 0
    result = report(partial)
    assert result["pages_removed"] == 0 and "failed" in result["removal_skipped"]
    result = report(gone)
    assert result["pages_removed"] == 1 and result["removal_skipped"]
    assert stopped.record.status is JobStatus.FAILED
    assert stopped.report is not None and stopped.report.progress.removed == 0
    assert found(settings, embedder, "wombatremoved") == {site.url("/b.html")}  # unlinked, kept: crawl incomplete
    assert found(settings, embedder, "installation") == {site.url("/c.html")}  # 500, kept
    assert found(settings, embedder, "quokkaoriginal") == set()  # 404, removed


async def test_refresh_of_a_sitemap_skips_pages_its_lastmod_says_are_unchanged(
    settings: Settings, embedder: LocalEmbedder
) -> None:
    old = utcnow() - timedelta(days=30)
    site = docs_site("mapped")
    site.lastmod = dict.fromkeys(site.pages, old)
    with serve_changing(site):
        (crawled,) = await run_jobs(settings, embedder, crawl(settings, site.url("/sitemap.xml")))
        assert report(crawled)["pages_added"] == 4
        site.pages["/a.html"] = doc("Alpha", "Alpha now documents the platypusrewritten option.")
        site.lastmod["/a.html"] = utcnow() + timedelta(minutes=1)
        del site.pages["/b.html"]  # and so out of the sitemap
        site.requests.clear()
        (refreshed,) = await run_jobs(settings, embedder, refresh(site.source_id))

    result = report(refreshed)
    assert result["pages_changed"] == 1 and result["pages_removed"] == 1 and result["pages_unchanged"] == 2
    assert site.requested("/c.html") == [] and site.requested("/") == []  # lastmod older than the stored copy
    assert site.requested("/a.html") == [200]
    assert found(settings, embedder, "platypusrewritten") == {site.url("/a.html")}
    assert found(settings, embedder, "wombatremoved") == set()


async def test_refresh_selection_names_the_known_sources(settings: Settings, embedder: LocalEmbedder) -> None:
    context = AppContext.create(settings, embedder=embedder)
    try:
        assert select_sources(context.store) == []
        with pytest.raises(RefreshInputError, match=r"unknown source 'nowhere\.example'"):
            select_sources(context.store, "nowhere.example")
    finally:
        context.close()


async def test_refresh_of_an_unchanged_site_sends_only_conditional_requests(
    settings: Settings, embedder: LocalEmbedder
) -> None:
    with serve_changing(docs_site("same")) as site:
        (crawled,) = await run_jobs(settings, embedder, crawl(settings, site.url("/")))
        site.requests.clear()
        (refreshed,) = await run_jobs(settings, embedder, refresh(site.source_id))

    assert report(crawled)["pages_added"] == 4
    result = report(refreshed)
    assert result["pages_unchanged"] == 4 and result["chunks_embedded"] == 0 and result["pages_removed"] == 0
    # The home page's links were stored with it: a 304 leads on to them, no page is downloaded again.
    assert sorted(site.requests) == sorted((path, 304) for path in ("/", "/a.html", "/b.html", "/c.html"))


def versioned_site() -> ChangingSite:
    """Versions 1.0 and 2.0 of one site at different paths of one host."""
    pages = {}
    for version in ("1.0", "2.0"):
        root = f"/{version}"
        tag = "v" + version.replace(".", "")
        pages |= {
            f"{root}/": doc(f"{tag} home", f"The {tag} docs.", f"{root}/a.html", f"{root}/b.html", f"{root}/c.html"),
            f"{root}/a.html": doc("Alpha", f"Alpha in {tag}: koalaoriginal{tag} settings are the default."),
            f"{root}/b.html": doc("Beta", f"Beta in {tag}: the dingoremoved{tag} command line tool."),
            f"{root}/c.html": doc("Gamma", f"Gamma in {tag}: installation on every platform."),
        }
    return ChangingSite(pages)


async def test_refresh_of_one_version_leaves_the_other_version_untouched(
    settings: Settings, embedder: LocalEmbedder
) -> None:
    async def refresh_version(jobs: JobManager) -> Job:
        (job,), problems = await start_refreshes(jobs, site.source_id, "1.0")
        assert problems == []
        return job

    with serve_changing(versioned_site()) as site:
        await run_jobs(settings, embedder, crawl(settings, site.url("/1.0/")), crawl(settings, site.url("/2.0/")))
        old, new = source_key(site.source_id, "1.0"), source_key(site.source_id, "2.0")
        assert found(settings, embedder, "koalaoriginalv10") == {site.url("/1.0/a.html")}
        before = found(settings, embedder, "koalaoriginalv20", new) | found(settings, embedder, "dingoremovedv20", new)

        site.pages["/1.0/a.html"] = doc("Alpha", "Alpha in v10: wallabyrewritten settings now apply.")
        del site.pages["/1.0/b.html"]
        site.pages["/1.0/d.html"] = doc("Delta", "Delta in v10: the bilbyadded plugin system.")
        site.pages["/1.0/"] = doc("v10 home", "The v10 docs.", "/1.0/a.html", "/1.0/c.html", "/1.0/d.html")
        (refreshed,) = await run_jobs(settings, embedder, refresh_version)

    result = report(refreshed)
    assert (result["pages_added"], result["pages_removed"]) == (1, 1) and result["pages_changed"] >= 1
    assert found(settings, embedder, "koalaoriginalv10") == set()
    assert found(settings, embedder, "dingoremovedv10") == set()
    assert found(settings, embedder, "wallabyrewritten", old) == {site.url("/1.0/a.html")}
    assert found(settings, embedder, "bilbyadded", old) == {site.url("/1.0/d.html")}
    after = found(settings, embedder, "koalaoriginalv20", new) | found(settings, embedder, "dingoremovedv20", new)
    assert after == before == {site.url("/2.0/a.html"), site.url("/2.0/b.html")}
