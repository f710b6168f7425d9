"""Scheduled refresh: a running server starts a refresh job for every source that is due, as ordinary jobs.

A source is due when its interval (its own, set when it was crawled, else REFRESH_INTERVAL_HOURS; 0 or none: never)
has passed since it was last crawled or refreshed, whatever that refresh's outcome (a site that is down is tried
again one interval later, not at every check). A source with a crawl or refresh job queued or running in this
process is left alone, so there is at most one refresh per source at a time. The jobs are like any other: listed
by list_crawl_jobs and `crawlrag jobs`, cancelled by cancel_crawl.

The clock is injectable, and REFRESH_CHECK_SECONDS sets how often the scheduler looks, so tests run it with
short intervals without sleeping on timing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import anyio

from crawlrag.config import Settings
from crawlrag.models import utcnow
from crawlrag.pipeline.jobs import Job, JobError, JobManager
from crawlrag.pipeline.refresh import RefreshInputError
from crawlrag.pipeline.refresh_jobs import active_job, start_refresh
from crawlrag.store.base import RefreshSchedule

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def refresh_interval(schedule: RefreshSchedule, default_hours: float | None) -> timedelta | None:
    """How often the source is refreshed; None when never."""
    hours = schedule.interval_hours if schedule.interval_hours is not None else default_hours
    return timedelta(hours=hours) if hours else None


def is_due(schedule: RefreshSchedule, now: datetime, default_hours: float | None) -> bool:
    interval = refresh_interval(schedule, default_hours)
    if interval is None:
        return False
    last = schedule.last_seen
    return last is None or now - last >= interval


class RefreshScheduler:
    """`await scheduler.run()` in the server's task group; `check()` once is what each round does."""

    def __init__(self, settings: Settings, jobs: JobManager, *, clock: Clock = utcnow) -> None:
        self.jobs = jobs
        self.default_hours = settings.refresh_interval_hours
        self.check_seconds = settings.refresh_check_seconds
        self.clock = clock

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.check_seconds)
            try:
                await self.check()
            except Exception:  # one failed round (a store hiccup) must not end the schedule
                log.exception("scheduled refresh check failed")

    async def check(self) -> list[Job]:
        """Start a refresh job for every due source that has no job running; returns the jobs started."""
        schedules = await anyio.to_thread.run_sync(self.jobs.store.refresh_schedule)
        now = self.clock()
        started = []
        for schedule in schedules:
            source_id = schedule.source_id
            if not is_due(schedule, now, self.default_hours) or active_job(self.jobs, source_id) is not None:
                continue
            try:
                job = await start_refresh(self.jobs, source_id)
            except (JobError, RefreshInputError) as exc:
                log.warning("scheduled refresh of %s not started: %s", source_id, exc)
                # Tried again one interval later, not at every check.
                await anyio.to_thread.run_sync(self.jobs.store.mark_refreshed, source_id)
                continue
            log.info("scheduled refresh of %s started (job %s)", source_id, job.job_id)
            started.append(job)
        return started
