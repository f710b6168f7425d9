"""The one set of objects a server process shares: context, crawler, job manager, metrics.

Entered once per process (by the stdio runner, the HTTP app's lifespan, or a test), never per MCP session or
request: every session's tool calls go through the same `ServerRuntime`, so models load once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from crawlrag.config import Settings, package_version
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler
from crawlrag.embeddings import Embedder
from crawlrag.models import utcnow
from crawlrag.pipeline.jobs import JobManager, JobMode
from crawlrag.pipeline.queue import open_job_queue, require_shared_queue
from crawlrag.pipeline.schedule import Clock, RefreshScheduler
from crawlrag.server.metrics import ServerJobEvents, ServerMetrics

log = logging.getLogger(__name__)

# How long a search waits for the embedding model that is still loading before it answers keyword-only.
EMBEDDER_WAIT_SECONDS = 20.0
# Closing the crawler (browser, HTTP pool) gets this long, even when shutdown was itself cancelled: shutdown on
# SIGTERM must end within a few seconds (orchestrators kill after their grace period).
SHUTDOWN_SECONDS = 2.0
# Store statistics safe to show on the unauthenticated /health route (no paths, no connection strings).
_PUBLIC_STORE_KEYS = ("backend", "sources", "pages", "chunks", "code_examples", "bytes", "vectors_in_memory")
_UNHEALTHY_RERANK_STATES = ("failed", "degraded")
# /health waits this long for fresh store statistics, then answers with the last ones: a slow or locked store
# must not make readiness probes time out.
HEALTH_STORE_WAIT_SECONDS = 0.05
# ...except for the first statistics of the process, which it waits for up to this long.
HEALTH_FIRST_STORE_WAIT_SECONDS = 5.0


class NotStartedError(RuntimeError):
    """A tool ran before the runtime was entered, or after it was closed."""


class ServerRuntime:
    """Build with settings (and optionally a ready AppContext), then `async with runtime:` for the process."""

    def __init__(
        self,
        settings: Settings,
        *,
        context: AppContext | None = None,
        crawler_factory: Callable[[Settings], Crawler] = Crawler,
        max_running_jobs: int | None = None,
        run_jobs: bool = True,
        refresh_clock: Clock | None = None,
    ) -> None:
        """`run_jobs=False` (`serve --no-worker`): crawl jobs only go to the shared queue, workers run them.
        `refresh_clock` replaces the wall clock of the refresh schedule (tests)."""
        self.settings = settings
        self._run_jobs = run_jobs
        self._given_context = context
        self._crawler_factory = crawler_factory
        self._max_running_jobs = max_running_jobs or settings.max_crawl_jobs
        self._context: AppContext | None = None
        self._crawler: Crawler | None = None
        self._jobs: JobManager | None = None
        self._metrics: ServerMetrics | None = None
        self._stack: AsyncExitStack | None = None
        self._embedder_ready: anyio.Event | None = None
        self.embedder_error: str | None = None
        self._tasks: TaskGroup | None = None
        self._store_stats: dict[str, Any] | None = None
        self._stats_refresh: anyio.Event | None = None
        self.interrupted_at_start = 0
        self._refresh_clock = refresh_clock
        self.scheduler: RefreshScheduler | None = None

    # --- the shared objects (raise NotStartedError outside `async with`) ------------------------------------

    @property
    def context(self) -> AppContext:
        if self._context is None:
            raise NotStartedError("the crawlrag server is not running")
        return self._context

    @property
    def crawler(self) -> Crawler:
        if self._crawler is None:
            raise NotStartedError("the crawlrag server is not running")
        return self._crawler

    @property
    def jobs(self) -> JobManager:
        if self._jobs is None:
            raise NotStartedError("the crawlrag server is not running")
        return self._jobs

    @property
    def metrics(self) -> ServerMetrics:
        if self._metrics is None:
            raise NotStartedError("the crawlrag server is not running")
        return self._metrics

    @property
    def started(self) -> bool:
        return self._jobs is not None

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> ServerRuntime:
        if self._stack is not None:
            raise RuntimeError("ServerRuntime is already running")
        stack = AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            try:
                await stack.aclose()
            finally:
                self._clear()
            raise
        self._stack = stack
        return self

    async def _start(self, stack: AsyncExitStack) -> None:
        if not self._run_jobs:
            require_shared_queue(self.settings, "a server without a worker (--no-worker)")
        if self._given_context is not None:
            context = self._given_context
        else:
            context = await anyio.to_thread.run_sync(AppContext.create, self.settings)
            stack.callback(context.close)
        metrics = ServerMetrics(context.registry)
        stack.callback(metrics.unregister)
        embedder = context.embedder
        self._metrics = metrics

        crawler = self._crawler_factory(self.settings)
        await crawler.__aenter__()
        stack.push_async_callback(self._close_crawler, crawler)
        jobs = JobManager(
            self.settings,
            context.store,
            embedder,
            crawler,
            ServerJobEvents(metrics),
            max_running=self._max_running_jobs,
            embedder_problem=lambda: self.embedder_error,
            queue=open_job_queue(self.settings, context.store),
            mode=JobMode.WORKER if self._run_jobs else JobMode.ENQUEUE,
        )
        # Jobs of `crawlrag crawl` processes still running on the same database are theirs, not interrupted; on
        # PostgreSQL nothing is: jobs whose holder died are resumed by a worker once their lease expires.
        self.interrupted_at_start = await jobs.interrupt_dead_jobs()
        if self.interrupted_at_start:
            log.warning(
                "%d crawl job(s) of a previous server process did not finish; they are marked interrupted "
                "(resume_crawl re-runs one)",
                self.interrupted_at_start,
            )
        if context.reranker is not None:
            context.reranker.start()  # loads in its own thread; searches wait for it with a bound

        # Background work of the runtime itself; cancelled (after the jobs are stopped) on exit.
        tasks = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tasks.cancel_scope.cancel)
        self._embedder_ready = anyio.Event()
        tasks.start_soon(self._load_embedder, embedder)
        self._tasks = tasks

        self._jobs = await stack.enter_async_context(jobs)
        # Scheduled refreshes (REFRESH_INTERVAL_HOURS, per-source intervals) start as jobs of this process.
        scheduler = RefreshScheduler(self.settings, jobs, clock=self._refresh_clock or utcnow)
        tasks.start_soon(scheduler.run, name="crawlrag refresh schedule")
        self.scheduler = scheduler
        self._context, self._crawler = context, crawler
        log.info("crawlrag %s ready (store and tools available; models load in the background)", package_version())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        # Not wrapped in a shielding scope: the task groups on the stack were entered outside it and must be exited
        # in the scope they were entered in. Jobs shield their own final save; the crawler is closed shielded.
        try:
            await stack.aclose()
        finally:
            self._clear()
        log.info("crawlrag stopped")

    @staticmethod
    async def _close_crawler(crawler: Crawler) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_SECONDS):
            await crawler.__aexit__(None, None, None)

    def _clear(self) -> None:
        self._context = self._crawler = self._jobs = None
        self._tasks = self._stats_refresh = None
        self.scheduler = None

    async def _load_embedder(self, embedder: Embedder) -> None:
        assert self._embedder_ready is not None
        try:
            # abandon_on_cancel: a shutdown during the load must not wait for the model to finish loading.
            await anyio.to_thread.run_sync(embedder.load, abandon_on_cancel=True)
        except Exception as exc:
            self.embedder_error = str(exc) or type(exc).__name__
            log.error("the embedding model did not load: %s", self.embedder_error)
        finally:
            self._embedder_ready.set()

    async def embedder_unavailable(self, timeout: float = EMBEDDER_WAIT_SECONDS) -> str | None:
        """None once the embedding model is usable; otherwise why not, after waiting up to `timeout` seconds."""
        if self._embedder_ready is None:
            raise NotStartedError("the crawlrag server is not running")
        with anyio.move_on_after(timeout):
            await self._embedder_ready.wait()
        if not self._embedder_ready.is_set():
            return f"the embedding model is still loading (waited {timeout:g}s)"
        if self.embedder_error is not None:
            return f"the embedding model failed to load: {self.embedder_error}"
        return None

    def _job_facts(self) -> dict[str, Any]:
        jobs = self.jobs
        return {"interrupted_at_start": self.interrupted_at_start, "mode": jobs.mode.value, "worker": jobs.worker}

    # --- health -----------------------------------------------------------------------------------------------

    async def _store_health(self) -> dict[str, Any]:
        """Fresh store statistics when the store answers quickly, else the last ones (marked stale)."""
        refresh = self._stats_refresh
        if refresh is None and self._tasks is not None:
            refresh = self._stats_refresh = anyio.Event()
            self._tasks.start_soon(self._refresh_store_stats, refresh)
        if refresh is not None:
            first = self._store_stats is None
            with anyio.move_on_after(HEALTH_FIRST_STORE_WAIT_SECONDS if first else HEALTH_STORE_WAIT_SECONDS):
                await refresh.wait()
        fresh = refresh is None or refresh.is_set()
        if self._store_stats is None:
            return {"ok": True, "pending": True}
        return self._store_stats | ({} if fresh else {"stale": True})

    async def _refresh_store_stats(self, done: anyio.Event) -> None:
        try:
            stats = await anyio.to_thread.run_sync(self.context.store.stats, abandon_on_cancel=True)
            self._store_stats = {"ok": True} | {k: stats[k] for k in _PUBLIC_STORE_KEYS if k in stats}
        except Exception as exc:
            self._store_stats = {"ok": False, "error": str(exc) or type(exc).__name__}
        finally:
            self._stats_refresh = None
            done.set()

    @property
    def embedder_ready(self) -> bool:
        return self._embedder_ready is not None and self._embedder_ready.is_set()

    async def health(self) -> dict[str, Any]:
        """The /health document; `status` is starting (the embedding model is still loading), ok, degraded (usable,
        something is missing) or error (unusable)."""
        if not self.started:
            return {"status": "error", "version": package_version(), "error": "the server is not running"}
        context = self.context
        problems: list[str] = []
        store = await self._store_health()
        if not store["ok"]:
            problems.append("error")
        ready = self.embedder_ready
        embedder = context.embedder.status() | {"ready": ready}
        if not ready:
            problems.append("starting")
        if self.embedder_error is not None:
            embedder["error"] = self.embedder_error
            problems.append("degraded")
        if context.reranker is None:
            rerank: dict[str, Any] = {"enabled": False}
        else:
            rerank = context.reranker.status()
            if str(rerank.get("state")) in _UNHEALTHY_RERANK_STATES:
                problems.append("degraded")
        status = next((name for name in ("error", "starting", "degraded") if name in problems), "ok")
        return {
            "status": status,
            "version": package_version(),
            "store": store,
            "embedder": embedder,
            "reranking_model_status": rerank,
            "jobs": self.jobs.counts() | self._job_facts(),
        }
