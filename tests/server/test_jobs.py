"""Crawl jobs: waiting and polling, progress notifications, cancellation, queueing, restarts and resuming.

The site's /slow/ section has six pages that each answer after SLOW_SECONDS, so crawls of it outlast short waits.
"""

from __future__ import annotations

import anyio
from mcp import Client
from server_helpers import StartServer, call, poll_job
from sitegen import SLOW_SECONDS

from crawlrag.models import CrawlJob, JobStatus


def slow(site_url: str) -> dict[str, object]:
    """Arguments for a crawl of the /slow/ index and its six slow pages (seven pages in all)."""
    return {"url": site_url + "/slow/", "max_depth": 1, "include": ["/slow/*"]}


async def test_a_crawl_that_outlasts_the_wait_returns_a_job_to_poll(start_server: StartServer, site_url: str) -> None:
    async with start_server(crawl_wait_seconds=0.1) as (_, mcp), Client(mcp) as client:
        started = await call(client, "smart_crawl_url", **slow(site_url), max_concurrent=6)
        listed = await call(client, "list_crawl_jobs")
        finished = await poll_job(client, started["job_id"])

    assert started["success"] is True and started["status"] in ("queued", "running")
    assert "get_crawl_status" in started["message"] and "result" not in started
    assert listed["jobs"][0]["job_id"] == started["job_id"] and listed["running"] + listed["queued"] == 1
    assert finished["status"] == "completed"
    assert finished["result"]["pages_stored"] == 7  # the /slow/ index and its six pages
    # Done counts every page handled: the seven stored and the navigation links skipped by the include filter.
    assert finished["progress"]["pages_done"] == finished["progress"]["pages_total"] > 7


async def test_progress_notifications_while_a_call_waits(start_server: StartServer, site_url: str) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with start_server(crawl_wait_seconds=60) as (_, mcp), Client(mcp) as client:
        result = await client.call_tool(
            "smart_crawl_url",
            {**slow(site_url), "max_concurrent": 3},
            progress_callback=on_progress,
        )

    assert result.structured_content is not None and result.structured_content["status"] == "completed"
    values = [progress for progress, _, _ in updates]
    assert len(values) >= 3 and values == sorted(set(values)), updates  # strictly increasing
    done = result.structured_content["progress"]["pages_done"]
    assert values[-1] == done and updates[-1][1] == done
    assert all(total is None or total >= progress for progress, total, _ in updates)
    assert "pages done" in (updates[-1][2] or "")


async def test_cancel_a_running_crawl(start_server: StartServer, site_url: str) -> None:
    async with start_server(crawl_wait_seconds=0.1) as (runtime, mcp), Client(mcp) as client:
        started = await call(client, "smart_crawl_url", **slow(site_url), max_concurrent=1)
        with anyio.fail_after(SLOW_SECONDS):
            cancelled = await call(client, "cancel_crawl", job_id=started["job_id"])
        status = await call(client, "get_crawl_status", job_id=started["job_id"])
        again = await call(client, "cancel_crawl", job_id=started["job_id"])
        stored = await anyio.to_thread.run_sync(runtime.context.store.get_job, started["job_id"])

    assert cancelled["success"] and cancelled["status"] == "cancelled"
    assert status["status"] == "cancelled" and "cancel" in status["job_error"]
    assert stored is not None and stored.status is JobStatus.CANCELLED
    assert again["success"] is False and "already ended (cancelled)" in again["error"]


async def test_jobs_beyond_the_limit_wait_in_a_queue(start_server: StartServer, site_url: str) -> None:
    async with start_server(crawl_wait_seconds=0.1, max_running_jobs=1) as (_, mcp), Client(mcp) as client:
        first = await call(client, "smart_crawl_url", **slow(site_url), max_concurrent=1)
        second = await call(client, "smart_crawl_url", **slow(site_url), max_concurrent=1)
        listed = await call(client, "list_crawl_jobs")
        cancelled_queued = await call(client, "cancel_crawl", job_id=second["job_id"])
        await call(client, "cancel_crawl", job_id=first["job_id"])

    assert first["status"] == "running" and second["status"] == "queued"
    assert listed["running"] == 1 and listed["queued"] == 1 and listed["max_running"] == 1
    assert cancelled_queued["status"] == "cancelled"


async def test_jobs_of_a_stopped_server_are_interrupted_and_can_be_resumed(
    start_server: StartServer, site_url: str
) -> None:
    # First server: a crawl is running when the server shuts down.
    async with start_server(crawl_wait_seconds=0.1) as (_, mcp), Client(mcp) as client:
        started = await call(client, "smart_crawl_url", **slow(site_url), max_concurrent=6)
        assert started["status"] == "running"
        with anyio.fail_after(SLOW_SECONDS):  # until the (fast) index page is stored; its six pages are slow
            while (await call(client, "get_crawl_status", job_id=started["job_id"]))["progress"]["chunks_stored"] < 1:
                await anyio.sleep(0.1)
    job_id = started["job_id"]

    # A process that died without shutting down leaves a job "running" in the store.
    async with start_server() as (runtime, _):
        crashed = CrawlJob(job_id="crashed-job", url=site_url + "/guide/", options={"max_depth": 0})
        crashed.status = JobStatus.RUNNING
        await anyio.to_thread.run_sync(runtime.context.store.save_job, crashed)

    async with start_server(crawl_wait_seconds=60) as (runtime, mcp), Client(mcp) as client:
        interrupted = await call(client, "get_crawl_status", job_id=job_id)
        crashed_status = await call(client, "get_crawl_status", job_id="crashed-job")
        pages_before = runtime.context.store.stats()["pages"]
        resumed = await call(client, "resume_crawl", job_id=job_id)
        stats = runtime.context.store.stats()
        again = await call(client, "resume_crawl", job_id=job_id)
        stats_again = runtime.context.store.stats()
        health = await runtime.health()

    assert interrupted["status"] == "interrupted" and "resume_crawl" in interrupted["job_error"]
    assert 1 <= pages_before < 7
    assert crashed_status["status"] == "interrupted" and health["jobs"]["interrupted_at_start"] == 1
    assert resumed["success"] and resumed["job_id"] == job_id and resumed["status"] == "completed"
    # Pages stored before the restart are recognised as unchanged; nothing is stored twice.
    assert resumed["result"]["pages_unchanged"] >= pages_before
    assert resumed["result"]["pages_stored"] + resumed["result"]["pages_unchanged"] == 7
    assert stats["pages"] == 7
    assert again["result"]["pages_unchanged"] == 7
    assert {k: v for k, v in stats_again.items() if k != "bytes"} == {k: v for k, v in stats.items() if k != "bytes"}
