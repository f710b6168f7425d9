"""Prometheus metrics of the server, registered in the AppContext's registry so /metrics shows them all."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from crawlrag.models import JobStatus
from crawlrag.pipeline.report import IndexProgress

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_PAGE_OUTCOMES = ("stored", "unchanged", "skipped", "failed")


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.tool_calls = Counter(
            "crawlrag_tool_calls",
            "MCP tool calls by tool and outcome (success, error, invalid: refused by the schema, exception, cancelled)",
            ["tool", "outcome"],
            registry=registry,
        )
        self.tool_seconds = Histogram(
            "crawlrag_tool_duration_seconds",
            "Time spent in MCP tool calls",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.pages = Counter(
            "crawlrag_pages_crawled", "Pages handled by crawl jobs, by outcome", ["outcome"], registry=registry
        )
        self.chunks = Counter("crawlrag_chunks_stored", "Chunks written to the store by crawl jobs", registry=registry)
        self.jobs = Gauge("crawlrag_crawl_jobs", "Crawl jobs in this process by state", ["state"], registry=registry)
        self.jobs_finished = Counter(
            "crawlrag_crawl_jobs_finished", "Crawl jobs that ended, by final status", ["status"], registry=registry
        )

    def unregister(self) -> None:
        """Remove these metrics from the registry, so a later runtime on the same context can register them."""
        for collector in (
            self.tool_calls,
            self.tool_seconds,
            self.pages,
            self.chunks,
            self.jobs,
            self.jobs_finished,
        ):
            self._registry.unregister(collector)

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_seconds.labels(tool).observe(seconds)


class ProgressCounter:
    """Turns a crawl job's cumulative progress into counter increments, so /metrics moves while a crawl runs."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        self._seen: dict[str, int] = dict.fromkeys((*_PAGE_OUTCOMES, "chunks"), 0)
        self.pages_done = 0

    def update(self, progress: IndexProgress) -> None:
        self.pages_done = progress.pages_done
        for outcome in _PAGE_OUTCOMES:
            value = getattr(progress, outcome)
            if value > self._seen[outcome]:
                self._metrics.pages.labels(outcome).inc(value - self._seen[outcome])
                self._seen[outcome] = value
        if progress.chunks_stored > self._seen["chunks"]:
            self._metrics.chunks.inc(progress.chunks_stored - self._seen["chunks"])
            self._seen["chunks"] = progress.chunks_stored


class ServerJobEvents:
    """The job manager's events as metrics: pages and chunks as they are counted, jobs by state."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        self._counters: dict[str, ProgressCounter] = {}

    def progress(self, job_id: str, progress: IndexProgress) -> None:
        counter = self._counters.get(job_id)
        if counter is None or progress.pages_done < counter.pages_done:  # a resumed job counts from zero again
            counter = self._counters[job_id] = ProgressCounter(self._metrics)
        counter.update(progress)

    def finished(self, status: JobStatus) -> None:
        self._metrics.jobs_finished.labels(status.value).inc()

    def counts(self, running: int, queued: int) -> None:
        self._metrics.jobs.labels("running").set(running)
        self._metrics.jobs.labels("queued").set(queued)
        if not running and not queued:
            self._counters.clear()
