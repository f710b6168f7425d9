"""Starting refresh jobs: one per source at a time, never beside a running crawl of the same source."""

from __future__ import annotations

import anyio

from crawlrag.pipeline.jobs import Job, JobError, JobManager
from crawlrag.pipeline.options import REFRESH_KIND
from crawlrag.pipeline.refresh import RefreshInputError, job_source, refresh_options, select_sources


def active_job(jobs: JobManager, source_id: str) -> Job | None:
    """A queued or running job (crawl or refresh) of this process on `source_id`."""
    return next((job for job in jobs.active() if job_source(job.options) == source_id), None)


async def start_refresh(jobs: JobManager, source_id: str) -> Job:
    """Start a refresh job of the source, or return the one already running; JobError while a crawl of it runs."""
    running = active_job(jobs, source_id)
    if running is not None:
        if running.options.kind == REFRESH_KIND:
            return running
        raise JobError(
            f"crawl job {running.job_id} of {source_id!r} is {running.record.status.value}; refresh it once it ends"
        )
    options = await anyio.to_thread.run_sync(refresh_options, jobs.store, jobs.settings, source_id)
    return await jobs.submit(options)


async def start_refreshes(
    jobs: JobManager, source: str | None = None, version: str | None = None
) -> tuple[list[Job], list[str]]:
    """Refresh jobs for the selected sources (see `select_sources`), one per source key, and why selected
    sources were not refreshed. A source the caller named that cannot be refreshed raises instead."""
    chosen = await anyio.to_thread.run_sync(select_sources, jobs.store, source, version)
    started, problems = [], []
    for source_id in chosen:
        try:
            started.append(await start_refresh(jobs, source_id))
        except (JobError, RefreshInputError) as exc:
            if source is not None:
                raise
            problems.append(str(exc))
    return started, problems
