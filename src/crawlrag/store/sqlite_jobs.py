"""Crawl-job rows of the SQLite store; the caller holds the connection (and the transaction for writes)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from crawlrag.models import INTERRUPTED_REASON, CrawlJob, JobStatus, utcnow

_COLUMNS = (
    "job_id, url, options, status, pages_done, pages_failed, pages_skipped, pages_total, chunks_stored, error,"
    " created_at, updated_at, worker, started_at, finished_at"
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def save_job(conn: sqlite3.Connection, job: CrawlJob) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.job_id,
            job.url,
            json.dumps(job.options),
            job.status.value,
            job.pages_done,
            job.pages_failed,
            job.pages_skipped,
            job.pages_total,
            job.chunks_stored,
            job.error,
            job.created_at.isoformat(),
            job.updated_at.isoformat(),
            job.worker,
            _iso(job.started_at),
            _iso(job.finished_at),
        ),
    )


def _job(row: tuple[Any, ...]) -> CrawlJob:
    return CrawlJob(
        job_id=row[0],
        url=row[1],
        options=json.loads(row[2]),
        status=JobStatus(row[3]),
        pages_done=row[4],
        pages_failed=row[5],
        pages_skipped=row[6],
        pages_total=row[7],
        chunks_stored=row[8],
        error=row[9],
        created_at=datetime.fromisoformat(row[10]),
        updated_at=datetime.fromisoformat(row[11]),
        worker=row[12],
        started_at=datetime.fromisoformat(row[13]) if row[13] else None,
        finished_at=datetime.fromisoformat(row[14]) if row[14] else None,
    )


def get_job(conn: sqlite3.Connection, job_id: str) -> CrawlJob | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return _job(row) if row else None


def list_jobs(conn: sqlite3.Connection, limit: int) -> list[CrawlJob]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
    return [_job(row) for row in rows]


def interrupt_unfinished_jobs(conn: sqlite3.Connection, alive: Callable[[str | None], bool]) -> int:
    rows = conn.execute(
        "SELECT job_id, worker FROM jobs WHERE status IN (?, ?)", (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    ).fetchall()
    dead = [job_id for job_id, worker in rows if not alive(worker)]
    now = utcnow().isoformat()
    for job_id in dead:
        conn.execute(
            "UPDATE jobs SET status = ?, error = COALESCE(error, ?), updated_at = ?, finished_at = ? WHERE job_id = ?",
            (JobStatus.INTERRUPTED.value, INTERRUPTED_REASON, now, now, job_id),
        )
    return len(dead)
