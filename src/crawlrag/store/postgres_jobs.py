"""Crawl job records in PostgreSQL (`crawl_jobs`), with the SQLite store's semantics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crawlrag.models import INTERRUPTED_REASON, CrawlJob, JobStatus, utcnow
from crawlrag.store.postgres_write import clean, clean_opt

COLUMNS = (
    "job_id, url, options, status, pages_done, pages_failed, pages_skipped, pages_total, chunks_stored, error,"
    " created_at, updated_at, worker, started_at, finished_at"
)
UPSERT = f"""
    INSERT INTO crawl_jobs ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (job_id) DO UPDATE SET
        url = EXCLUDED.url, options = EXCLUDED.options, status = EXCLUDED.status,
        pages_done = EXCLUDED.pages_done, pages_failed = EXCLUDED.pages_failed,
        pages_skipped = EXCLUDED.pages_skipped, pages_total = EXCLUDED.pages_total,
        chunks_stored = EXCLUDED.chunks_stored, error = EXCLUDED.error,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
        worker = EXCLUDED.worker, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
"""


def job_row(job: CrawlJob) -> tuple[Any, ...]:
    """The values of `COLUMNS` for `job`, in order."""
    return (job.job_id, clean(job.url), Jsonb(job.options), job.status.value, job.pages_done, job.pages_failed,
            job.pages_skipped, job.pages_total, job.chunks_stored, clean_opt(job.error), job.created_at,
            job.updated_at, clean_opt(job.worker), job.started_at, job.finished_at)  # fmt: skip


def save_job(conn: psycopg.Connection[Any], job: CrawlJob) -> None:
    job.updated_at = utcnow()
    conn.execute(UPSERT, job_row(job))


def job_from_row(row: tuple[Any, ...]) -> CrawlJob:
    return CrawlJob(
        job_id=row[0],
        url=row[1],
        options=row[2],
        status=JobStatus(row[3]),
        pages_done=row[4],
        pages_failed=row[5],
        pages_skipped=row[6],
        pages_total=row[7],
        chunks_stored=row[8],
        error=row[9],
        created_at=row[10].astimezone(UTC),
        updated_at=row[11].astimezone(UTC),
        worker=row[12],
        started_at=row[13].astimezone(UTC) if row[13] else None,
        finished_at=row[14].astimezone(UTC) if row[14] else None,
    )


def get_job(conn: psycopg.Connection[Any], job_id: str) -> CrawlJob | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM crawl_jobs WHERE job_id = %s", (job_id,)).fetchone()
    return job_from_row(row) if row else None


def list_jobs(conn: psycopg.Connection[Any], limit: int) -> list[CrawlJob]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM crawl_jobs ORDER BY created_at DESC LIMIT %s", (limit,)).fetchall()
    return [job_from_row(row) for row in rows]


def interrupt_unfinished_jobs(conn: psycopg.Connection[Any], alive: Callable[[str | None], bool]) -> int:
    rows = conn.execute(
        # A job whose holder still renews its lease is not dead, whatever host it runs on.
        "SELECT job_id, worker FROM crawl_jobs WHERE status IN (%s, %s)"
        " AND (lease_expires_at IS NULL OR lease_expires_at < now()) FOR UPDATE",
        (JobStatus.QUEUED.value, JobStatus.RUNNING.value),
    ).fetchall()
    dead = [job_id for job_id, worker in rows if not alive(worker)]
    if dead:
        conn.execute(
            "UPDATE crawl_jobs SET status = %s, error = coalesce(error, %s), updated_at = now(), finished_at = now()"
            " WHERE job_id = ANY(%s)",
            (JobStatus.INTERRUPTED.value, INTERRUPTED_REASON, dead),
        )
    return len(dead)
