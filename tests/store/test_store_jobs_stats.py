"""Crawl jobs and health stats (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from store_helpers import DIM, MODEL, code_example, page_write, unit_vectors

from crawlrag.models import INTERRUPTED_REASON, CrawlJob, JobStatus
from crawlrag.store.base import Store


def _job(job_id: str, minutes_ago: int, status: JobStatus = JobStatus.QUEUED, error: str | None = None) -> CrawlJob:
    created = datetime(2025, 1, 1, 12, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    return CrawlJob(
        job_id=job_id,
        url=f"https://example.com/{job_id}",
        options={"max_depth": 2, "allowed": ["a", "b"], "nested": {"x": None}},
        status=status,
        error=error,
        created_at=created,
    )


def test_save_and_get_job_round_trip(store: Store) -> None:
    job = _job("j1", 0)
    job.pages_total = None
    store.save_job(job)

    loaded = store.get_job("j1")
    assert loaded is not None
    assert loaded.to_dict() == job.to_dict()
    assert loaded.options == {"max_depth": 2, "allowed": ["a", "b"], "nested": {"x": None}}
    assert store.get_job("missing") is None


def test_save_job_updates_in_place(store: Store) -> None:
    job = _job("j1", 0)
    store.save_job(job)
    first_update = job.updated_at
    job.status, job.pages_done, job.pages_total, job.chunks_stored = JobStatus.RUNNING, 3, 10, 42
    store.save_job(job)

    loaded = store.get_job("j1")
    assert loaded is not None
    progress = (loaded.status, loaded.pages_done, loaded.pages_total, loaded.chunks_stored)
    assert progress == (JobStatus.RUNNING, 3, 10, 42)
    assert loaded.updated_at >= first_update
    assert [j.job_id for j in store.list_jobs()] == ["j1"]


def test_list_jobs_newest_first_with_limit(store: Store) -> None:
    for job_id, age in (("old", 30), ("new", 1), ("mid", 10)):
        store.save_job(_job(job_id, age))
    assert [j.job_id for j in store.list_jobs()] == ["new", "mid", "old"]
    assert [j.job_id for j in store.list_jobs(limit=2)] == ["new", "mid"]


def test_interrupt_unfinished_jobs(store: Store) -> None:
    store.save_job(_job("queued", 1))
    store.save_job(_job("running", 2, JobStatus.RUNNING, error="earlier warning"))
    store.save_job(_job("done", 3, JobStatus.COMPLETED))
    store.save_job(_job("failed", 4, JobStatus.FAILED, error="boom"))

    assert store.interrupt_unfinished_jobs() == 2
    assert store.interrupt_unfinished_jobs() == 0

    jobs = {job.job_id: job for job in store.list_jobs()}
    assert jobs["queued"].status is JobStatus.INTERRUPTED
    assert jobs["queued"].error == INTERRUPTED_REASON
    assert (jobs["running"].status, jobs["running"].error) == (JobStatus.INTERRUPTED, "earlier warning")
    assert (jobs["done"].status, jobs["failed"].status) == (JobStatus.COMPLETED, JobStatus.FAILED)


def test_stats(store: Store, backend: str, rng: np.random.Generator) -> None:
    empty = store.stats()
    assert empty["backend"] == backend
    assert (empty["sources"], empty["pages"], empty["chunks"], empty["code_examples"]) == (0, 0, 0, 0)

    store.ensure_source("a.example.com", MODEL, DIM)
    code = [code_example("https://a.example.com/1", 0, "x = 1", "assign")]
    store.write_page(
        page_write(
            "https://a.example.com/1",
            "a.example.com",
            ["a", "b", "c"],
            unit_vectors(rng, 3),
            code=code,
            code_vectors=unit_vectors(rng, 1),
        )
    )
    stats = store.stats()
    assert (stats["sources"], stats["pages"], stats["chunks"], stats["code_examples"]) == (1, 1, 3, 1)
    assert stats["bytes"] > 0
