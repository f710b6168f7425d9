"""Where crawl jobs wait and who runs them: this process alone (SQLite, the default) or any worker (PostgreSQL).

`LocalJobQueue`: the process that submits a job runs it; the store only records it. `PostgresJobQueue`: crawl_jobs
is a shared, durable queue. Workers claim jobs with `FOR UPDATE SKIP LOCKED`, hold them with a lease
(JOB_LEASE_SECONDS) that they renew while the job runs, and read the job's cancel flag on every renewal, so a
cancel from any server reaches the holder within about a second. A worker that dies stops renewing; once the lease
expired another worker claims the job and runs it again, and the indexer skips the pages already stored (same
content hash and index settings), so nothing is stored twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from crawlrag.config import Settings
from crawlrag.models import CrawlJob
from crawlrag.store import Store
from crawlrag.store.job_lease import Claimed, Renewal

if TYPE_CHECKING:
    from crawlrag.store.postgres import PostgresStore

# The holder renews its lease (and reads the cancel flag) this often at most; a third of the lease at least.
RENEW_SECONDS = 1.0
# An idle worker asks the queue for a job this often; jobs submitted in the same process wake it at once.
CLAIM_POLL_SECONDS = 1.0

T = TypeVar("T")


class QueueUnavailableError(RuntimeError):
    """A shared queue was asked for where the store cannot hold one (SQLite)."""


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


class JobQueue(Protocol):
    """The job manager's view of where jobs wait. Blocking work runs in worker threads."""

    @property
    def shared(self) -> bool:
        """True when other processes may run this queue's jobs (leases, cancel flags); False: this process only."""

    @property
    def renew_seconds(self) -> float: ...

    async def enqueue(self, job: CrawlJob, *, hold: bool) -> bool:
        """Record `job` as waiting (with `hold`, held by `job.worker` already); False if it is still unfinished."""

    async def claim(self, worker: str) -> Claimed | None:
        """The next job for `worker` to run, now held by it; None when none waits."""

    async def renew(self, job_id: str, worker: str) -> Renewal: ...

    async def save(self, job: CrawlJob, worker: str) -> bool:
        """Write the state of a job `worker` holds; False when it does not hold it (any more)."""

    async def release(self, job: CrawlJob, worker: str) -> bool:
        """Give a held, unfinished job back for another worker to resume."""

    async def request_cancel(self, job_id: str, reason: str) -> CrawlJob | None:
        """Ask the holder to stop `job_id`; the record now, or None when it is not unfinished."""

    async def interrupt_dead(self) -> int:
        """Mark jobs nobody will finish as interrupted; return how many."""


class LocalJobQueue:
    """Jobs run in the process that submitted them; the store only records them."""

    shared = False
    renew_seconds = RENEW_SECONDS

    def __init__(self, store: Store) -> None:
        self.store = store

    async def enqueue(self, job: CrawlJob, *, hold: bool) -> bool:
        await anyio.to_thread.run_sync(self.store.save_job, job)
        return True

    async def claim(self, worker: str) -> Claimed | None:
        return None

    async def renew(self, job_id: str, worker: str) -> Renewal:
        return Renewal(held=True, cancel_reason=None)

    async def save(self, job: CrawlJob, worker: str) -> bool:
        await anyio.to_thread.run_sync(self.store.save_job, job)
        return True

    async def release(self, job: CrawlJob, worker: str) -> bool:
        return False

    async def request_cancel(self, job_id: str, reason: str) -> CrawlJob | None:
        return None

    async def interrupt_dead(self) -> int:
        return await anyio.to_thread.run_sync(self.store.interrupt_unfinished_jobs, worker_alive)


class PostgresJobQueue:
    """crawl_jobs of a PostgreSQL store as the queue every server and worker on that database shares."""

    shared = True

    def __init__(self, store: Store, lease_seconds: float) -> None:
        # Imported here: SQLite users need not have psycopg installed.
        from crawlrag.store import postgres_queue
        from crawlrag.store.postgres import PostgresStore

        if not isinstance(store, PostgresStore):
            raise QueueUnavailableError("a shared crawl-job queue needs a PostgreSQL DATABASE_URL")
        self.store: PostgresStore = store
        self._sql = postgres_queue
        self.lease_seconds = lease_seconds
        self.renew_seconds = min(RENEW_SECONDS, lease_seconds / 3)

    async def _call(self, operation: Callable[..., T], *args: Any) -> T:
        """Run one of postgres_queue's functions on a pooled connection, in a worker thread."""

        def run() -> T:
            with self.store.connection() as conn:
                return operation(conn, *args)

        return await anyio.to_thread.run_sync(run)

    async def enqueue(self, job: CrawlJob, *, hold: bool) -> bool:
        return await self._call(self._sql.enqueue, job, self.lease_seconds if hold else None)

    async def claim(self, worker: str) -> Claimed | None:
        return await self._call(self._sql.claim, worker, self.lease_seconds)

    async def renew(self, job_id: str, worker: str) -> Renewal:
        return await self._call(self._sql.renew, job_id, worker, self.lease_seconds)

    async def save(self, job: CrawlJob, worker: str) -> bool:
        return await self._call(self._sql.save_held, job, worker, self.lease_seconds)

    async def release(self, job: CrawlJob, worker: str) -> bool:
        return await self._call(self._sql.release, job, worker)

    async def request_cancel(self, job_id: str, reason: str) -> CrawlJob | None:
        return await self._call(self._sql.request_cancel, job_id, reason)

    async def interrupt_dead(self) -> int:
        # Nothing is lost on a shared queue: a job whose holder died is resumed by a worker once its lease expires.
        return 0


def open_job_queue(settings: Settings, store: Store) -> JobQueue:
    """The shared queue on a PostgreSQL store, the in-process one otherwise (SQLite, a store wrapped by a test)."""
    if settings.sqlite_path is None:
        from crawlrag.store.postgres import PostgresStore  # only then: SQLite users need not have psycopg

        if isinstance(store, PostgresStore):
            return PostgresJobQueue(store, settings.job_lease_seconds)
    return LocalJobQueue(store)


def require_shared_queue(settings: Settings, what: str) -> None:
    """Refuse `what` (a worker, a server without one) where jobs cannot be shared: with SQLite."""
    if settings.sqlite_path is not None:
        raise QueueUnavailableError(
            f"{what} needs the shared job queue of a PostgreSQL DATABASE_URL; with SQLite the server runs its own "
            "crawl jobs (start `crawlrag serve` without --no-worker)"
        )
