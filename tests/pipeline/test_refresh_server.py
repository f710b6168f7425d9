"""Refresh in a server: the refresh_source tool through the SDK client, and scheduled refreshes as jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import anyio
import pytest
from mcp import Client
from refresh_site import ChangingSite, doc, serve_changing

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler
from crawlrag.embeddings import LocalEmbedder
from crawlrag.models import CrawlJob, JobStatus, utcnow
from crawlrag.pipeline.jobs import JobManager
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.schedule import RefreshScheduler
from crawlrag.server.app import build_mcp_server
from crawlrag.server.runtime import ServerRuntime

SettingsFactory = Callable[..., Settings]
WAIT = 90.0  # generous: the machine may be busy; every wait ends as soon as its condition holds


def small_site(tag: str) -> ChangingSite:
    return ChangingSite(
        {
            "/": doc(f"{tag} home", f"The {tag} manual.", "/one.html", "/two.html"),
            "/one.html": doc("One", f"Page one of the {tag} manual explains the koalaoriginal switch."),
            "/two.html": doc("Two", f"Page two of the {tag} manual lists every dingoremoved flag."),
        }
    )


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result.structured_content, dict), result
    assert result.is_error is (not result.structured_content["success"])
    return result.structured_content


async def refresh_jobs(runtime: ServerRuntime, source_id: str) -> list[CrawlJob]:
    return [
        record
        for record in await runtime.jobs.records(200)
        if record.options.get("kind") == "refresh" and record.options.get("source_id") == source_id
    ]


async def wait_for(condition: Callable[[], Any], timeout: float = WAIT) -> Any:
    with anyio.fail_after(timeout):
        while not (value := await condition()):
            await anyio.sleep(0.1)
    return value


async def test_refresh_source_tool_reports_and_runs_as_a_job(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    settings = make_settings(respect_robots_txt=False, browser="never")
    context = AppContext.create(settings, embedder=embedder)
    try:
        with serve_changing(small_site("tool")) as site:
            async with ServerRuntime(settings, context=context) as runtime, Client(build_mcp_server(runtime)) as client:
                tools = {tool.name: tool for tool in (await client.list_tools()).tools}
                crawled = await call(client, "smart_crawl_url", url=site.url("/"), max_depth=1)
                site.pages["/one.html"] = doc("One", "Page one now explains the wombatrewritten switch.")
                del site.pages["/two.html"]
                site.pages["/"] = doc("tool home", "The tool manual.", "/one.html", "/three.html")
                site.pages["/three.html"] = doc("Three", "Page three is about the new emuadded option.")
                refreshed = await call(client, "refresh_source", source=site.source_id)
                unknown = await call(client, "refresh_source", source="nowhere.example")
                listed = await call(client, "list_crawl_jobs")
                everything = await call(client, "refresh_source")
                search = await call(client, "perform_rag_query", query="dingoremoved flag", match_count=5)
    finally:
        context.close()

    tool = tools["refresh_source"]
    assert tool.annotations is not None and tool.annotations.destructive_hint is True
    assert set(tool.input_schema["properties"]) == {"source", "version"}
    assert "refresh_interval_hours" in tools["smart_crawl_url"].input_schema["properties"]
    assert crawled["status"] == "completed"
    assert refreshed["success"] and refreshed["count"] == 1
    (job,) = refreshed["jobs"]
    assert job["status"] == "completed" and job["crawl_type"] == "refresh"
    result = job["result"]
    assert (result["pages_added"], result["pages_removed"], result["pages_unchanged"]) == (1, 1, 0)
    assert result["pages_changed"] == 2  # the home page and /one.html
    assert not unknown["success"] and site.source_id in unknown["error"]
    assert job["job_id"] in [listed_job["job_id"] for listed_job in listed["jobs"]]
    assert everything["success"] and everything["count"] == 1 and everything["not_refreshed"] == []
    assert everything["jobs"][0]["result"]["pages_unchanged"] == 3
    assert all("dingoremoved" not in hit["content"] for hit in search["results"])


async def test_a_server_refreshes_a_source_on_its_schedule_one_job_at_a_time(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    # A source refreshed about every second, checked ten times a second; another source without an interval.
    settings = make_settings(respect_robots_txt=False, browser="never", refresh_check_seconds=0.1)
    context = AppContext.create(settings, embedder=embedder)
    try:
        with serve_changing(small_site("scheduled")) as site, serve_changing(small_site("manual")) as manual:
            async with ServerRuntime(settings, context=context) as runtime, Client(build_mcp_server(runtime)) as client:
                every_second = 1 / 3600
                await call(client, "smart_crawl_url", url=site.url("/"), refresh_interval_hours=every_second)
                await call(client, "smart_crawl_url", url=manual.url("/"))
                del site.pages["/two.html"]
                site.pages["/"] = doc("scheduled home", "The scheduled manual.", "/one.html")

                async def two_refreshes_done() -> list[CrawlJob]:
                    done = [job for job in await refresh_jobs(runtime, site.source_id) if job.status.finished]
                    return done if len(done) >= 2 else []

                finished = await wait_for(two_refreshes_done)
                # A slow site: the next scheduled refresh is running long enough to be seen and cancelled.
                site.delay = 1.0

                async def running_refresh() -> list[CrawlJob]:
                    jobs = await refresh_jobs(runtime, site.source_id)
                    return [job for job in jobs if job.status is JobStatus.RUNNING]

                (running,) = await wait_for(running_refresh)
                cancelled = await call(client, "cancel_crawl", job_id=running.job_id)
                site.delay = 0.0
                manual_refreshes = await refresh_jobs(runtime, manual.source_id)
                records = await refresh_jobs(runtime, site.source_id)
    finally:
        context.close()

    first = min(finished, key=lambda job: job.created_at)
    assert first.status is JobStatus.COMPLETED
    assert cancelled["status"] in ("cancelled", "running")
    assert manual_refreshes == []  # no interval of its own and REFRESH_INTERVAL_HOURS unset
    # At most one refresh of the source at a time: the jobs' run times do not overlap.
    spans = sorted((job.started_at, job.finished_at or utcnow()) for job in records if job.started_at)
    assert all(end <= start for (_, end), (start, _) in pairwise(spans)), spans


@pytest.fixture
def settings(make_settings: SettingsFactory, database_url: str) -> Settings:
    return make_settings(
        database_url=database_url, respect_robots_txt=False, browser="never", refresh_interval_hours=24
    )


async def test_the_schedule_follows_the_clock_and_the_intervals(settings: Settings, embedder: LocalEmbedder) -> None:
    now = utcnow()
    clock = [now]
    context = AppContext.create(settings, embedder=embedder)
    try:
        with serve_changing(small_site("daily")) as daily, serve_changing(small_site("never")) as never:
            async with (
                Crawler(settings) as crawler,
                JobManager(settings, context.store, context.embedder, crawler, max_running=2) as jobs,
            ):
                for options in (
                    CrawlOptions.build(settings, url=daily.url("/"), max_depth=1),
                    CrawlOptions.build(settings, url=never.url("/"), max_depth=1, refresh_interval_hours=0),
                ):
                    await (job := await jobs.submit(options)).done.wait()
                    assert job.record.status is JobStatus.COMPLETED, job.record.error
                scheduler = RefreshScheduler(settings, jobs, clock=lambda: clock[0])
                not_yet = await scheduler.check()
                clock[0] = now + timedelta(hours=25)
                daily.delay = 0.3  # the refresh takes a while: the next check finds it running
                due = await scheduler.check()
                while_running = await scheduler.check()
                for job in due:
                    await job.done.wait()
                clock[0] = utcnow() + timedelta(hours=23)
                after = await scheduler.check()  # just refreshed: due again only a day later
    finally:
        context.close()

    assert not_yet == []
    assert [job.options.source_id for job in due] == [daily.source_id]  # 0: never refreshed on a schedule
    assert while_running == [] and after == []
    assert due[0].record.status is JobStatus.COMPLETED and due[0].report is not None
    assert due[0].report.progress.unchanged == 3
