"""crawl_jobs as the shared queue (store/postgres_queue.py), statement by statement, on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from crawlrag.models import CrawlJob, JobStatus
from crawlrag.store import postgres_queue
from crawlrag.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres
LEASE = 30.0


@pytest.fixture
def conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    PostgresStore(postgres_url).close()  # creates the schema
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        yield connection


def job(job_id: str, minutes_ago: int) -> CrawlJob:
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return CrawlJob(job_id=job_id, url=f"https://example.com/{job_id}", options={}, created_at=created)


def expire(conn: psycopg.Connection[Any], job_id: str) -> None:
    conn.execute("UPDATE crawl_jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = %s", (job_id,))


def test_claims_take_the_oldest_job_once_and_leases_guard_the_holder(conn: psycopg.Connection[Any]) -> None:
    assert postgres_queue.enqueue(conn, job("old", 10), None)
    assert postgres_queue.enqueue(conn, job("new", 1), None)
    first = postgres_queue.claim(conn, "a:1", LEASE)
    second = postgres_queue.claim(conn, "b:2", LEASE)
    assert first is not None and second is not None
    assert (first.job.job_id, first.job.worker, first.attempt) == ("old", "a:1", 1)
    assert second.job.job_id == "new" and first.job.status is JobStatus.RUNNING
    assert postgres_queue.claim(conn, "c:3", LEASE) is None  # both are held
    assert not postgres_queue.enqueue(conn, job("old", 0), None)  # still running: not restarted

    assert postgres_queue.renew(conn, "old", "a:1", LEASE).held
    assert not postgres_queue.renew(conn, "old", "b:2", LEASE).held
    first.job.pages_done = 5
    assert not postgres_queue.save_held(conn, first.job, "b:2", LEASE)
    assert postgres_queue.save_held(conn, first.job, "a:1", LEASE)

    # The holder died: once its lease expired another worker resumes the job, and the old holder is out.
    expire(conn, "old")
    resumed = postgres_queue.claim(conn, "c:3", LEASE)
    assert resumed is not None and (resumed.job.job_id, resumed.attempt, resumed.job.pages_done) == ("old", 2, 5)
    assert not postgres_queue.renew(conn, "old", "a:1", LEASE).held
    assert not postgres_queue.save_held(conn, first.job, "a:1", LEASE)

    # A worker shutting down hands its job back: claimable at once, no holder.
    assert postgres_queue.release(conn, resumed.job, "c:3")
    again = postgres_queue.claim(conn, "d:4", LEASE)
    assert again is not None and again.job.job_id == "old" and again.attempt == 3

    # An ended job leaves the queue; it may then be restarted under its id.
    again.job.status, again.job.finished_at = JobStatus.COMPLETED, datetime.now(UTC)
    assert postgres_queue.save_held(conn, again.job, "d:4", LEASE)
    (lease,) = conn.execute("SELECT lease_expires_at FROM crawl_jobs WHERE job_id = 'old'").fetchone() or (None,)
    assert lease is None
    assert postgres_queue.enqueue(conn, job("old", 0), None)


def test_cancel_reaches_the_holder_or_ends_a_job_nobody_holds(conn: psycopg.Connection[Any]) -> None:
    postgres_queue.enqueue(conn, job("held", 2), None)
    postgres_queue.enqueue(conn, job("waiting", 1), None)
    assert postgres_queue.claim(conn, "a:1", LEASE) is not None

    held = postgres_queue.request_cancel(conn, "held", "stop it")
    waiting = postgres_queue.request_cancel(conn, "waiting", "stop it")
    assert held is not None and held.status is JobStatus.RUNNING  # its holder stops it
    assert postgres_queue.renew(conn, "held", "a:1", LEASE).cancel_reason == "stop it"
    assert waiting is not None and (waiting.status, waiting.error) == (JobStatus.CANCELLED, "stop it")
    assert waiting.finished_at is not None
    assert postgres_queue.request_cancel(conn, "waiting", "again") is None  # ended already

    # A job whose holder died after someone cancelled it is not resumed: the next claim ends it.
    expire(conn, "held")
    assert postgres_queue.claim(conn, "b:2", LEASE) is None
    ((status, error),) = conn.execute("SELECT status, error FROM crawl_jobs WHERE job_id = 'held'").fetchall()
    assert (status, error) == ("cancelled", "stop it")


def test_a_job_enqueued_as_held_is_not_claimed_while_its_lease_lasts(conn: psycopg.Connection[Any]) -> None:
    mine = job("cli", 1)
    mine.worker = "cli:9"
    assert postgres_queue.enqueue(conn, mine, LEASE)
    assert postgres_queue.claim(conn, "a:1", LEASE) is None
    assert postgres_queue.renew(conn, "cli", "cli:9", LEASE).held
    expire(conn, "cli")
    claimed = postgres_queue.claim(conn, "a:1", LEASE)
    assert claimed is not None and claimed.attempt == 2
