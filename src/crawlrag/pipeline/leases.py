"""Holding a job of the shared queue: renewing its lease, obeying its cancel flag, letting go when it is lost."""

from __future__ import annotations

import logging

import anyio

from crawlrag.models import CrawlJob, JobStatus, utcnow
from crawlrag.pipeline.job_parts import Job, describe_error
from crawlrag.pipeline.queue import JobQueue
from crawlrag.store import StoreError

log = logging.getLogger(__name__)


async def keep_lease(queue: JobQueue, worker: str, job: Job) -> None:
    """Renew the job's lease while it runs; stop it when someone asks to cancel it or the lease is lost."""
    while not job.done.is_set():
        with anyio.move_on_after(queue.renew_seconds):
            await job.done.wait()
        if job.done.is_set():
            return
        try:
            renewal = await queue.renew(job.job_id, worker)
        except StoreError as exc:  # the lease may outlast a short outage; the next renewal tries again
            log.warning("could not renew the lease of crawl job %s: %s", job.job_id, exc)
            continue
        if not renewal.held:
            lose(job)
        elif renewal.cancel_reason is not None:
            job.cancel_reason = renewal.cancel_reason
            job.scope.cancel()


def lose(job: Job) -> None:
    """Another worker holds the job now (this one missed its lease): stop, and write nothing more for it."""
    if not job.lost:
        log.warning("crawl job %s: another worker took it over (this one missed its lease); stopping", job.job_id)
        job.lost = True
        job.cancel_reason = "stopped: another worker took the job over"
        job.scope.cancel()


async def fail_unrunnable(queue: JobQueue, worker: str, record: CrawlJob, exc: Exception) -> None:
    """A claimed job this version cannot run (options it cannot rebuild) fails instead of stopping the worker."""
    log.warning("crawl job %s cannot run: %s", record.job_id, describe_error(exc))
    record.status, record.error, record.finished_at = JobStatus.FAILED, describe_error(exc), utcnow()
    try:
        await queue.save(record, worker)
    except StoreError as error:
        log.warning("could not record crawl job %s: %s", record.job_id, error)
