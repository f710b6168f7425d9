"""Crawl jobs: every crawl (an MCP tool's or `crawlrag crawl`'s) runs as a job that is recorded in the store.

MCP clients give up on a tool call after about a minute, so the tools start a job, wait a while, and hand back a
job id to poll. Jobs run in the manager's task group (not the request's), so a client that disconnects or cancels
its call leaves the crawl running; only `cancel` or shutdown stops it. Each record names the process that runs
it (`worker`, "host:pid"), so a process starting up only marks jobs of processes that are gone as interrupted.
Metrics are not kept here: the manager reports to a `JobEvents` (the server's turns them into Prometheus metrics).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlInputError
from crawlrag.embeddings import Embedder, EmbeddingError
from crawlrag.models import INTERRUPTED_REASON, CrawlJob, JobStatus, utcnow
from crawlrag.pipeline.failures import SystemicError
from crawlrag.pipeline.indexer import Indexer, IndexProgress, IndexReport
from crawlrag.pipeline.options import REFRESH_KIND, CrawlOptions
from crawlrag.pipeline.refresh import Refresher
from crawlrag.store import Store, StoreError

log = logging.getLogger(__name__)

# Progress is written to the store at most this often; state changes are written at once.
SAVE_INTERVAL_SECONDS = 2.0
# How often a waiting tool call looks at its job; progress notifications go out at this pace at most.
POLL_SECONDS = 0.25
# Finished jobs stay in memory (with their full report) up to this many; older ones are read from the store.
KEEP_FINISHED = 100

INTERRUPTED_ERROR = INTERRUPTED_REASON
USER_FACING_ERRORS = (CrawlInputError, StoreError, EmbeddingError, SystemicError)

ProgressReporter = Callable[[int, int | None, str], Awaitable[None]]


def this_worker() -> str:
    """How job records name this process: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str | None) -> bool:
    """Whether the process a job record names still runs (only knowable for processes of this host)."""
    if not worker or worker == this_worker():
        return False  # this process is starting: a job recorded under its own name is from an earlier life
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class JobEvents(Protocol):
    """What the manager reports as jobs run: the server turns these into metrics."""

    def progress(self, job_id: str, progress: IndexProgress) -> None: ...

    def finished(self, status: JobStatus) -> None: ...

    def counts(self, running: int, queued: int) -> None: ...


class NoJobEvents:
    def progress(self, job_id: str, progress: IndexProgress) -> None:
        pass

    def finished(self, status: JobStatus) -> None:
        pass

    def counts(self, running: int, queued: int) -> None:
        pass


class JobError(Exception):
    """A job request that cannot be honoured (unknown id, already running, already finished)."""


@dataclass(eq=False)
class Job:
    record: CrawlJob
    options: CrawlOptions
    done: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    report: IndexReport | None = None
    last_saved: float = 0.0
    cancel_reason: str = "cancelled by cancel_crawl"

    @property
    def job_id(self) -> str:
        return self.record.job_id


def total_known(progress: IndexProgress) -> int | None:
    """Pages the crawl will handle as far as is known now; None until something has been discovered.

    Never below pages_done (skipped and failed pages count as done but not against max_pages), so a progress
    notification never reports more done than its total."""
    if not (progress.discovered or progress.pages_done):
        return None
    return max(progress.pages_done, min(progress.discovered, progress.max_pages))


def leaf_error(exc: BaseException) -> BaseException:
    """The first real error inside task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_error(exc: BaseException) -> str:
    """One line for the job record."""
    exc = leaf_error(exc)
    text = str(exc).strip()
    if isinstance(exc, USER_FACING_ERRORS) and text:
        return text  # these messages are written for the user
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class JobManager:
    """Runs crawl jobs, at most `max_running` at once (the rest wait as `queued`), and records them in the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: Embedder,
        crawler: Crawler,
        events: JobEvents | None = None,
        *,
        max_running: int,
        embedder_problem: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`embedder_problem()` says why the embedder is known to be unusable (None when it is fine or unknown):
        a job then fails at once instead of starting."""
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.crawler = crawler
        self.events: JobEvents = events or NoJobEvents()
        self.embedder_problem = embedder_problem
        self.max_running = max_running
        self.worker = this_worker()
        self._limiter = anyio.Semaphore(max_running)
        self._jobs: dict[str, Job] = {}
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> JobManager:
        self._task_group = await anyio.create_task_group().__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Shutdown: running and queued jobs see the cancellation as "interrupted" and record it.
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._task_group = None

    # --- starting and stopping ------------------------------------------------------------------------------

    async def interrupt_dead_jobs(self) -> int:
        """Mark jobs that no running process owns (a crash, a kill) as interrupted; return how many."""
        return await anyio.to_thread.run_sync(self.store.interrupt_unfinished_jobs, worker_alive)

    async def submit(self, options: CrawlOptions, job_id: str | None = None) -> Job:
        """Record a new job (or restart a finished one under its old id) and start it."""
        if self._task_group is None:
            raise RuntimeError("the job manager is not running")
        record = CrawlJob(
            job_id=job_id or uuid.uuid4().hex, url=options.url, options=options.to_stored(), worker=self.worker
        )
        if job_id is not None:
            old = await anyio.to_thread.run_sync(self.store.get_job, job_id)
            if old is not None:
                record.created_at = old.created_at
        job = Job(record, options)
        self._jobs[job.job_id] = job
        await self._save(job)
        self._update_gauges()
        self._task_group.start_soon(self._run, job)
        self._forget_old()
        return job

    async def resume(self, job_id: str) -> Job:
        """Run a finished (typically interrupted) job's request again; unchanged pages are skipped by hash."""
        live = self._jobs.get(job_id)
        if live is not None and not live.record.status.finished:
            raise JobError(f"crawl job {job_id} is still {live.record.status.value}; nothing to resume")
        record = live.record if live is not None else await anyio.to_thread.run_sync(self.store.get_job, job_id)
        if record is None:
            raise JobError(f"no crawl job with id {job_id!r}; list_crawl_jobs shows the known jobs")
        options = CrawlOptions.from_stored(record.url, record.options, self.settings)
        return await self.submit(options, job_id=job_id)

    async def cancel(self, job_id: str, wait_seconds: float = 10.0, reason: str | None = None) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            record = await anyio.to_thread.run_sync(self.store.get_job, job_id)
            if record is None:
                raise JobError(f"no crawl job with id {job_id!r}; list_crawl_jobs shows the known jobs")
            raise JobError(f"crawl job {job_id} is {record.status.value}, not running in this server")
        if job.record.status.finished:
            raise JobError(f"crawl job {job_id} already ended ({job.record.status.value})")
        if reason is not None:
            job.cancel_reason = reason
        job.scope.cancel()
        with anyio.move_on_after(wait_seconds):
            await job.done.wait()
        return job

    # --- looking at jobs --------------------------------------------------------------------------------------

    def live(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def active(self) -> list[Job]:
        """The jobs of this process that are queued or running."""
        return [job for job in self._jobs.values() if not job.record.status.finished]

    async def record(self, job_id: str) -> CrawlJob | None:
        job = self._jobs.get(job_id)
        if job is not None:
            return job.record
        return await anyio.to_thread.run_sync(self.store.get_job, job_id)

    async def records(self, limit: int = 50) -> list[CrawlJob]:
        """Newest first; jobs of this process show their current progress, not the last one saved."""
        stored = await anyio.to_thread.run_sync(self.store.list_jobs, limit)
        return [self._jobs[r.job_id].record if r.job_id in self._jobs else r for r in stored]

    def counts(self) -> dict[str, int]:
        states = [job.record.status for job in self._jobs.values()]
        return {
            "running": states.count(JobStatus.RUNNING),
            "queued": states.count(JobStatus.QUEUED),
            "max_running": self.max_running,
            "finished_in_this_process": sum(1 for state in states if state.finished),
        }

    async def wait(self, job: Job, timeout: float, report: ProgressReporter | None = None) -> bool:
        """Wait up to `timeout` seconds for `job` to end; True if it did. Reports progress when it grows."""
        sent = -1
        with anyio.move_on_after(timeout):
            while True:
                finished = job.done.is_set()
                done, total = job.record.pages_done, job.record.pages_total
                if report is not None and done > sent:
                    sent = done
                    await report(done, total, f"{done} pages done, {job.record.chunks_stored} chunks stored")
                if finished:
                    break
                with anyio.move_on_after(POLL_SECONDS):
                    await job.done.wait()
        return job.done.is_set()

    # --- running ----------------------------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        def on_progress(progress: IndexProgress) -> None:
            self._copy_progress(job, progress)
            self.events.progress(job.job_id, progress)
            if time.monotonic() - job.last_saved >= SAVE_INTERVAL_SECONDS and self._task_group is not None:
                job.last_saved = time.monotonic()
                self._task_group.start_soon(self._save, job)

        try:
            with job.scope:
                async with self._limiter:
                    job.record.status = JobStatus.RUNNING
                    job.record.started_at = utcnow()
                    self._update_gauges()
                    await self._save(job)
                    problem = self.embedder_problem()
                    if problem is not None:  # known broken: fail now rather than fetch a site to embed nothing
                        raise SystemicError(f"the embedding model cannot be used: {problem}")
                    if job.options.kind == REFRESH_KIND:
                        refresher = Refresher(self.settings, self.store, self.embedder, self.crawler)
                        job.report = await refresher.run(job.options, on_progress)
                    else:
                        indexer = Indexer(self.settings, self.store, self.embedder, self.crawler)
                        job.report = await indexer.run(job.options, on_progress)
            if job.report is None:
                self._finish(job, JobStatus.CANCELLED, job.cancel_reason)
            else:
                self._finish_with_report(job, job.report)
        except anyio.get_cancelled_exc_class():
            self._finish(job, JobStatus.INTERRUPTED, INTERRUPTED_ERROR)
            with anyio.CancelScope(shield=True):
                await self._save(job)
            job.done.set()
            raise
        except Exception as exc:
            error = describe_error(exc)
            if isinstance(leaf_error(exc), USER_FACING_ERRORS):
                log.warning("crawl job %s failed: %s", job.job_id, error)
            else:  # a bug or an unforeseen failure: keep the traceback
                log.exception("crawl job %s failed", job.job_id)
            self._finish(job, JobStatus.FAILED, error)
        await self._save(job)
        # Waiters (cancel_crawl, the tool call waiting on the crawl) wake only once the final state is stored.
        job.done.set()

    def _finish_with_report(self, job: Job, report: IndexReport) -> None:
        self._copy_progress(job, report.progress)
        ok = report.progress.stored + report.progress.unchanged
        if ok == 0 and report.time_limit_reached:
            limit = self.settings.crawl_timeout_seconds
            self._finish(job, JobStatus.FAILED, f"crawl time limit reached (CRAWL_TIMEOUT_SECONDS={limit:g})")
        elif ok == 0 and (report.failures or report.skipped):
            first = report.failures[0] if report.failures else report.skipped[0]
            # Only the caller's own start URL is named: other URLs were found on (possibly hostile) pages.
            where = f" ({first.url})" if first.url == job.record.url else ""
            self._finish(job, JobStatus.FAILED, f"no page could be crawled: {first.reason}{where}")
        else:
            self._finish(job, JobStatus.COMPLETED, None)

    def _finish(self, job: Job, status: JobStatus, error: str | None) -> None:
        job.record.status = status
        job.record.error = error
        job.record.finished_at = utcnow()
        self.events.finished(status)
        self._update_gauges()

    @staticmethod
    def _copy_progress(job: Job, progress: IndexProgress) -> None:
        record = job.record
        # pages_done only grows, which keeps the progress notifications built from it monotonic.
        record.pages_done = max(record.pages_done, progress.pages_done)
        record.pages_failed = progress.failed
        record.pages_skipped = progress.skipped
        record.pages_total = total_known(progress)
        record.chunks_stored = progress.chunks_stored

    async def _save(self, job: Job) -> None:
        try:
            await anyio.to_thread.run_sync(self.store.save_job, job.record)
        except Exception:  # a lost progress update must not end the crawl; the next save catches up
            log.exception("could not record crawl job %s", job.job_id)

    def _update_gauges(self) -> None:
        counts = self.counts()
        self.events.counts(counts["running"], counts["queued"])

    def _forget_old(self) -> None:
        finished = [job for job in self._jobs.values() if job.record.status.finished]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.job_id]
