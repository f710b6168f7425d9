"""crawl_jobs as a shared job queue: `FOR UPDATE SKIP LOCKED` claims, leases renewed by the holder, cancel flags.

A job is claimable while it is queued or running, nobody asked to cancel it, and its lease is missing or expired
(its holder died or let it go). Every write of a holder names the holder (`worker`): a process that lost its lease
(it stalled past it and another worker took the job over) changes nothing any more. Times come from the database
clock, so the workers' clocks need not agree.
"""

from __future__ import annotations

from typing import Any

import psycopg

from crawlrag.models import CrawlJob, utcnow
from crawlrag.store.job_lease import Claimed, Renewal
from crawlrag.store.postgres_jobs import COLUMNS, UPSERT, job_from_row, job_row
from crawlrag.store.postgres_write import clean_opt

_LEASE = "now() + make_interval(secs => %(lease)s)"

# A job is (re)started only once it has ended: a queued or running job keeps its row as it is.
_ENQUEUE = (
    UPSERT
    + """, cancel_requested = NULL, lease_expires_at = NULL, attempts = 0
    WHERE crawl_jobs.status NOT IN ('queued', 'running')
    RETURNING job_id"""
)

_CLAIM = f"""
    UPDATE crawl_jobs SET status = 'running', worker = %(worker)s, lease_expires_at = {_LEASE},
        attempts = attempts + 1, updated_at = now()
    WHERE job_id = (
        SELECT job_id FROM crawl_jobs
        WHERE status IN ('queued', 'running') AND cancel_requested IS NULL
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    RETURNING {COLUMNS}, attempts
"""

# Asked to stop, but its holder died first: nobody will record the stop, so it ends here.
_END_ORPHANED_CANCELS = """
    UPDATE crawl_jobs SET status = 'cancelled', error = cancel_requested, finished_at = now(), updated_at = now(),
        lease_expires_at = NULL
    WHERE status IN ('queued', 'running') AND cancel_requested IS NOT NULL AND lease_expires_at < now()
"""

_SAVE_HELD = f"""
    UPDATE crawl_jobs SET status = %(status)s, pages_done = %(pages_done)s, pages_failed = %(pages_failed)s,
        pages_skipped = %(pages_skipped)s, pages_total = %(pages_total)s, chunks_stored = %(chunks_stored)s,
        error = %(error)s, updated_at = now(), started_at = %(started_at)s, finished_at = %(finished_at)s,
        lease_expires_at = CASE WHEN %(finished)s THEN NULL ELSE {_LEASE} END
    WHERE job_id = %(job_id)s AND worker = %(worker)s AND status IN ('queued', 'running')
"""

# Expired or missing lease: nobody runs it, so it ends here. Otherwise its holder sees the flag and stops.
_CANCEL = f"""
    UPDATE crawl_jobs SET cancel_requested = %(reason)s,
        status = CASE WHEN lease_expires_at IS NULL OR lease_expires_at < now() THEN 'cancelled' ELSE status END,
        error = CASE WHEN lease_expires_at IS NULL OR lease_expires_at < now() THEN %(reason)s ELSE error END,
        finished_at = CASE WHEN lease_expires_at IS NULL OR lease_expires_at < now() THEN now() ELSE finished_at END,
        updated_at = now()
    WHERE job_id = %(job_id)s AND status IN ('queued', 'running')
    RETURNING {COLUMNS}
"""


def enqueue(conn: psycopg.Connection[Any], job: CrawlJob, lease_seconds: float | None) -> bool:
    """Record `job` as queued (or restart an ended one); with `lease_seconds`, `job.worker` holds it from now on.

    False when a job with this id is still queued or running."""
    job.updated_at = utcnow()
    with conn.transaction():
        if conn.execute(_ENQUEUE, job_row(job)).fetchone() is None:
            return False
        if lease_seconds is not None:
            conn.execute(
                f"UPDATE crawl_jobs SET lease_expires_at = {_LEASE}, attempts = 1 WHERE job_id = %(job_id)s",
                {"lease": lease_seconds, "job_id": job.job_id},
            )
    return True


def claim(conn: psycopg.Connection[Any], worker: str, lease_seconds: float) -> Claimed | None:
    """Take the oldest claimable job for `worker`, or None when there is none."""
    with conn.transaction():
        conn.execute(_END_ORPHANED_CANCELS)
        row = conn.execute(_CLAIM, {"worker": clean_opt(worker), "lease": lease_seconds}).fetchone()
    return Claimed(job_from_row(row[:-1]), int(row[-1])) if row else None


def renew(conn: psycopg.Connection[Any], job_id: str, worker: str, lease_seconds: float) -> Renewal:
    row = conn.execute(
        f"UPDATE crawl_jobs SET lease_expires_at = {_LEASE} WHERE job_id = %(job_id)s AND worker = %(worker)s"
        " AND status IN ('queued', 'running') RETURNING cancel_requested",
        {"lease": lease_seconds, "job_id": job_id, "worker": worker},
    ).fetchone()
    return Renewal(held=row is not None, cancel_reason=row[0] if row else None)


def save_held(conn: psycopg.Connection[Any], job: CrawlJob, worker: str, lease_seconds: float) -> bool:
    """Write a held job's state (renewing its lease, or dropping it once the job ended); False if not held."""
    job.updated_at = utcnow()
    values = {
        "status": job.status.value,
        "pages_done": job.pages_done,
        "pages_failed": job.pages_failed,
        "pages_skipped": job.pages_skipped,
        "pages_total": job.pages_total,
        "chunks_stored": job.chunks_stored,
        "error": clean_opt(job.error),
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "finished": job.status.finished,
        "lease": lease_seconds,
        "job_id": job.job_id,
        "worker": worker,
    }
    return conn.execute(_SAVE_HELD, values).rowcount == 1


def release(conn: psycopg.Connection[Any], job: CrawlJob, worker: str) -> bool:
    """Hand a held, unfinished job back to the queue (a worker shutting down): the next worker resumes it."""
    row = conn.execute(
        "UPDATE crawl_jobs SET status = 'queued', worker = NULL, lease_expires_at = NULL, updated_at = now(),"
        " pages_done = %s, pages_failed = %s, pages_skipped = %s, pages_total = %s, chunks_stored = %s"
        " WHERE job_id = %s AND worker = %s AND status IN ('queued', 'running') RETURNING job_id",
        (job.pages_done, job.pages_failed, job.pages_skipped, job.pages_total, job.chunks_stored, job.job_id, worker),
    ).fetchone()
    return row is not None


def request_cancel(conn: psycopg.Connection[Any], job_id: str, reason: str) -> CrawlJob | None:
    """Ask for `job_id` to stop; the job as it is now (ended already when nobody held it), None if not unfinished."""
    row = conn.execute(_CANCEL, {"reason": reason, "job_id": job_id}).fetchone()
    return job_from_row(row) if row else None
