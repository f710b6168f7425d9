"""Crawl jobs: every crawl (an MCP tool's or `crawlrag crawl`'s) runs as a job that is recorded in the store.

MCP clients give up on a tool call after about a minute, so the tools start a job, wait a while, and hand back a
job id to poll. Jobs run in the manager's task group (not the request's), so a client that disconnects or cancels
its call leaves the crawl running; only `cancel` or shutdown stops it. Each record names the process that runs
it (`worker`, "host:pid"), so a process starting up only marks jobs of processes that are gone as interrupted.
Metrics are not kept here: the manager reports to a `JobEvents` (the server's turns them into Prometheus metrics).

Where jobs wait is the `JobQueue`'s business (pipeline/queue.py). With the local queue (SQLite) a submitted job runs
here. With the shared queue (PostgreSQL) the manager works in one of three modes: `LOCAL` (`crawlrag crawl`: what
it submits runs here, under a lease), `WORKER` (a server or `crawlrag worker`: submitted jobs go to the queue and
`max_running` claim loops take jobs from it, this process's or any other's) or `ENQUEUE` (`serve --no-worker`).
Jobs held by other processes are read from the store, so every server shows the same state.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from crawlrag.config import Settings
from crawlrag.crawl import Crawler
from crawlrag.embeddings import Embedder
from crawlrag.models import CrawlJob, JobStatus, utcnow
from crawlrag.pipeline.failures import SystemicError
from crawlrag.pipeline.indexer import Indexer, IndexProgress, IndexReport
from crawlrag.pipeline.job_parts import (
    CANCEL_REASON,
    INTERRUPTED_ERROR,
    USER_FACING_ERRORS,
    Job,
    JobError,
    JobEvents,
    JobMode,
    NoJobEvents,
    ProgressReporter,
    describe_error,
    leaf_error,
    total_known,
)
from crawlrag.pipeline.leases import fail_unrunnable, keep_lease, lose
from crawlrag.pipeline.options import REFRESH_KIND, CrawlOptions
from crawlrag.pipeline.queue import CLAIM_POLL_SECONDS, JobQueue, LocalJobQueue, this_worker, worker_alive
from crawlrag.pipeline.refresh import Refresher
from crawlrag.store import Store, StoreError
from crawlrag.store.job_lease import Claimed

log = logging.getLogger(__name__)

# Progress is written to the store at most this often; state changes are written at once.
SAVE_INTERVAL_SECONDS = 2.0
# How often a waiting tool call looks at its job; progress notifications go out at this pace at most.
POLL_SECONDS = 0.25
# Finished jobs stay in memory (with their full report) up to this many; older ones are read from the store.
KEEP_FINISHED = 100

__all__ = [
    "Job",
    "JobError",
    "JobEvents",
    "JobManager",
    "JobMode",
    "NoJobEvents",
    "ProgressReporter",
    "this_worker",
    "worker_alive",
]


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
        queue: JobQueue | None = None,
        mode: JobMode = JobMode.LOCAL,
    ) -> None:
        """`embedder_problem()` says why the embedder is known to be unusable (None when it is fine or unknown):
        a job then fails at once instead of starting. `queue` defaults to the local one; `mode` only matters
        for a shared queue."""
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.crawler = crawler
        self.events: JobEvents = events or NoJobEvents()
        self.embedder_problem = embedder_problem
        self.max_running = max_running
        self.queue: JobQueue = queue or LocalJobQueue(store)
        self.mode = mode if self.queue.shared else JobMode.LOCAL
        self.worker = this_worker()
        self._limiter = anyio.Semaphore(max_running)
        self._jobs: dict[str, Job] = {}
        self._task_group: TaskGroup | None = None
        self._wake = anyio.Event()

    async def __aenter__(self) -> JobManager:
        self._task_group = await anyio.create_task_group().__aenter__()
        if self.mode is JobMode.WORKER:
            for _ in range(self.max_running):
                self._task_group.start_soon(self._claim_loop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Shutdown: running and queued jobs see the cancellation as "interrupted" and record it (or, on the shared
        # queue, hand their jobs back for another worker to resume).
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._task_group = None

    # --- starting and stopping ------------------------------------------------------------------------------

    async def interrupt_dead_jobs(self) -> int:
        """Mark jobs that no running process owns (a crash, a kill) as interrupted; return how many."""
        return await self.queue.interrupt_dead()

    async def submit(self, options: CrawlOptions, job_id: str | None = None) -> Job:
        """Record a new job (or restart a finished one under its old id) and start it (or queue it)."""
        if self._task_group is None:
            raise RuntimeError("the job manager is not running")
        here = self.mode is JobMode.LOCAL
        record = CrawlJob(
            job_id=job_id or uuid.uuid4().hex,
            url=options.url,
            options=options.to_stored(),
            worker=self.worker if here else None,
        )
        if job_id is not None:
            old = await anyio.to_thread.run_sync(self.store.get_job, job_id)
            if old is not None:
                record.created_at = old.created_at
        job = Job(record, options)
        if not await self.queue.enqueue(record, hold=here):
            raise JobError(f"crawl job {record.job_id} is still queued or running; nothing to resume")
        self._jobs[job.job_id] = job
        if here:
            self._hold(job)
            self._task_group.start_soon(self._run, job)
        else:
            self._wake.set()  # this process's claim loops take it at once when one is free
            self._wake = anyio.Event()
        self._update_gauges()
        self._forget_old()
        return job

    async def resume(self, job_id: str) -> Job:
        """Run a finished (typically interrupted) job's request again; unchanged pages are skipped by hash."""
        live = self._jobs.get(job_id)
        if live is not None and self._current(live) and not live.record.status.finished:
            raise JobError(f"crawl job {job_id} is still {live.record.status.value}; nothing to resume")
        record = await self.record(job_id)
        if record is None:
            raise JobError(f"no crawl job with id {job_id!r}; list_crawl_jobs shows the known jobs")
        if not record.status.finished:
            raise JobError(f"crawl job {job_id} is still {record.status.value}; nothing to resume")
        options = CrawlOptions.from_stored(record.url, record.options, self.settings)
        return await self.submit(options, job_id=job_id)

    async def cancel(self, job_id: str, wait_seconds: float = 10.0, reason: str | None = None) -> Job:
        job = self._jobs.get(job_id)
        if job is not None and not job.held and self.queue.shared:
            return await self._cancel_elsewhere(job_id, wait_seconds, reason)
        if job is None:
            record = await anyio.to_thread.run_sync(self.store.get_job, job_id)
            if record is None:
                raise JobError(f"no crawl job with id {job_id!r}; list_crawl_jobs shows the known jobs")
            if self.queue.shared and not record.status.finished:
                return await self._cancel_elsewhere(job_id, wait_seconds, reason)
            raise JobError(f"crawl job {job_id} is {record.status.value}, not running in this server")
        if job.record.status.finished:
            raise JobError(f"crawl job {job_id} already ended ({job.record.status.value})")
        if reason is not None:
            job.cancel_reason = reason
        job.scope.cancel()
        with anyio.move_on_after(wait_seconds):
            await job.done.wait()
        return job

    async def _cancel_elsewhere(self, job_id: str, wait_seconds: float, reason: str | None) -> Job:
        """Cancel a job of the shared queue that another process holds (or nobody holds yet)."""
        record = await self.queue.request_cancel(job_id, reason or CANCEL_REASON)
        if record is None:
            stored = await anyio.to_thread.run_sync(self.store.get_job, job_id)
            if stored is None:
                raise JobError(f"no crawl job with id {job_id!r}; list_crawl_jobs shows the known jobs")
            raise JobError(f"crawl job {job_id} already ended ({stored.status.value})")
        job = self._jobs.get(job_id)
        if job is None or job.held:
            job = Job(record, CrawlOptions.from_stored(record.url, record.options, self.settings))
        job.record = record
        await self.wait(job, wait_seconds)  # until its holder has recorded the stop
        return job

    # --- looking at jobs --------------------------------------------------------------------------------------

    def live(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def _current(self, job: Job) -> bool:
        """Whether `job.record` is the job's current state (else the store has it: another process runs it)."""
        return job.held or not self.queue.shared or job.done.is_set()

    def active(self) -> list[Job]:
        """The jobs of this process that are queued or running."""
        return [job for job in self._jobs.values() if not job.record.status.finished]

    async def record(self, job_id: str) -> CrawlJob | None:
        job = self._jobs.get(job_id)
        if job is not None and self._current(job):
            return job.record
        return await anyio.to_thread.run_sync(self.store.get_job, job_id)

    async def records(self, limit: int = 50) -> list[CrawlJob]:
        """Newest first; jobs of this process show their current progress, not the last one saved."""
        stored = await anyio.to_thread.run_sync(self.store.list_jobs, limit)
        mine = {job_id: job for job_id, job in self._jobs.items() if self._current(job)}
        return [mine[r.job_id].record if r.job_id in mine else r for r in stored]

    def counts(self) -> dict[str, int]:
        states = [job.record.status for job in self._jobs.values() if self._current(job)]
        return {
            "running": states.count(JobStatus.RUNNING),
            "queued": states.count(JobStatus.QUEUED),
            "max_running": self.max_running if self.mode is not JobMode.ENQUEUE else 0,
            "finished_in_this_process": sum(1 for state in states if state.finished),
        }

    async def wait(self, job: Job, timeout: float, report: ProgressReporter | None = None) -> bool:
        """Wait up to `timeout` seconds for `job` to end; True if it did. Reports progress when it grows."""
        sent = -1
        with anyio.move_on_after(timeout):
            while True:
                if not self._current(job):
                    await self._refresh(job)
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

    async def _refresh(self, job: Job) -> None:
        """Read the state of a job another process runs."""
        try:
            record = await anyio.to_thread.run_sync(self.store.get_job, job.job_id)
        except StoreError as exc:  # a waiting call keeps the last state it saw; the next poll tries again
            log.warning("could not read crawl job %s: %s", job.job_id, exc)
            return
        if record is not None and not self._current(job):
            job.record = record
            if record.status.finished:
                job.done.set()

    # --- the shared queue: claiming and holding jobs ----------------------------------------------------------

    async def _claim_loop(self) -> None:
        """One of `max_running` loops that take jobs from the shared queue and run them, one at a time."""
        while True:
            wake = self._wake
            claimed: Claimed | None = None
            if self.embedder_problem() is None:  # a broken model here must not fail jobs other workers can do
                try:
                    claimed = await self.queue.claim(self.worker)
                except StoreError as exc:
                    log.warning("could not take a crawl job from the queue: %s", exc)
            if claimed is None:
                with anyio.move_on_after(CLAIM_POLL_SECONDS):
                    await wake.wait()
                continue
            try:
                job = self._adopt(claimed)
            except Exception as exc:  # options this version cannot rebuild: the job fails, the loop goes on
                await fail_unrunnable(self.queue, self.worker, claimed.job, exc)
                continue
            await self._run(job)

    def _adopt(self, claimed: Claimed) -> Job:
        record = claimed.job
        if claimed.attempt > 1:
            log.warning("resuming crawl job %s (attempt %d): its last worker stopped", record.job_id, claimed.attempt)
        job = self._jobs.get(record.job_id)
        if job is None or job.held:
            job = Job(record, CrawlOptions.from_stored(record.url, record.options, self.settings))
            self._jobs[job.job_id] = job
        job.record = record  # the submitter's own Job, when it was submitted here: its waiters see it live
        self._hold(job)
        return job

    def _hold(self, job: Job) -> None:
        job.held = True
        if self.queue.shared and self._task_group is not None:
            self._task_group.start_soon(keep_lease, self.queue, self.worker, job)

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
                    job.record.started_at = job.record.started_at or utcnow()
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
            with anyio.CancelScope(shield=True):
                await self._stopped_by_shutdown(job)
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

    async def _stopped_by_shutdown(self, job: Job) -> None:
        """A held job of the shared queue goes back to it (the next worker resumes it); others are interrupted."""
        if self.queue.shared and not job.lost:
            try:
                if await self.queue.release(job.record, self.worker):
                    job.record.status, job.record.worker = JobStatus.QUEUED, None
                    self._update_gauges()
                    return
            except StoreError as exc:  # its lease expires, and a worker resumes it then
                log.warning("could not hand crawl job %s back to the queue: %s", job.job_id, exc)
                return
        self._finish(job, JobStatus.INTERRUPTED, INTERRUPTED_ERROR)
        await self._save(job)

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
        if job.lost:
            return
        try:
            if not await self.queue.save(job.record, self.worker):
                lose(job)
        except Exception:  # a lost progress update must not end the crawl; the next save catches up
            log.exception("could not record crawl job %s", job.job_id)

    def _update_gauges(self) -> None:
        counts = self.counts()
        self.events.counts(counts["running"], counts["queued"])

    def _forget_old(self) -> None:
        # Jobs other processes run are read from the store anyway: they go as finished ones do.
        finished = [job for job in self._jobs.values() if job.record.status.finished or not self._current(job)]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.job_id]
