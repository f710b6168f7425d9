"""What the UI asks of the server, in one place: the only module that talks to the runtime and the job manager.

Every blocking store call runs in a worker thread. Pages get plain view records, so templates never reach into
server objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from crawlrag.crawl import source_id_for
from crawlrag.models import CodeHit, CrawlJob, JobStatus, SearchHit, SourceInfo
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.refresh_jobs import start_refresh
from crawlrag.search import SearchMode
from crawlrag.server.arguments import ArgumentError, check_job_id
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.ui.latency import LatencyRow, latency_rows

# Jobs looked at to find each source's start URL (newest first) and shown on the Jobs page.
JOBS_SHOWN = 100
# How long a cancel waits for the crawl to stop before the page answers.
CANCEL_WAIT_SECONDS = 5.0
# How long a search waits for an embedding model that is still loading before it answers keyword-only.
EMBEDDER_WAIT_SECONDS = 5.0
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "keyword")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass(frozen=True, slots=True)
class SourceRow:
    info: SourceInfo
    start_url: str | None  # the URL of its newest crawl job, None when unknown

    @property
    def source_id(self) -> str:
        return self.info.source_id


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    url: str
    status: str
    finished: bool
    pages_done: int
    pages_total: int | None
    pages_failed: int
    pages_skipped: int
    chunks_stored: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    max_depth: Any
    max_pages: Any

    @property
    def can_cancel(self) -> bool:
        return not self.finished

    @property
    def can_resume(self) -> bool:
        return self.finished and self.status != JobStatus.COMPLETED.value

    @classmethod
    def of(cls, job: CrawlJob) -> JobRow:
        return cls(
            job_id=job.job_id,
            url=job.url,
            status=job.status.value,
            finished=job.status.finished,
            pages_done=job.pages_done,
            pages_total=job.pages_total,
            pages_failed=job.pages_failed,
            pages_skipped=job.pages_skipped,
            chunks_stored=job.chunks_stored,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
            max_depth=job.options.get("max_depth"),
            max_pages=job.options.get("max_pages"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "finished": self.finished,
            "pages_done": self.pages_done,
            "pages_total": self.pages_total,
            "pages_failed": self.pages_failed,
            "pages_skipped": self.pages_skipped,
            "chunks_stored": self.chunks_stored,
            "error": self.error,
            "can_cancel": self.can_cancel,
            "can_resume": self.can_resume,
        }


@dataclass(frozen=True, slots=True)
class ResultRow:
    title: str
    link: str  # the section's own URL when the hit knows it, else the page's
    url: str
    headings: str
    source_id: str
    content: str
    score: float
    similarity: float | None
    keyword_score: float | None
    rerank_score: float | None

    @classmethod
    def of(cls, hit: SearchHit | CodeHit) -> ResultRow:
        section = getattr(hit, "section_url", None)
        title = hit.title if isinstance(hit, SearchHit) else (hit.summary or hit.language)
        content = hit.content if isinstance(hit, SearchHit) else hit.code
        return cls(
            title=title or hit.url,
            link=section or hit.url,
            url=hit.url,
            headings=hit.headings,
            source_id=hit.source_id,
            content=_BLANK_LINES.sub("\n", content.strip()),  # a snippet, read at a glance
            score=hit.score,
            similarity=hit.similarity,
            keyword_score=hit.keyword_score,
            rerank_score=hit.rerank_score,
        )


@dataclass(slots=True)
class SearchOutcome:
    results: list[ResultRow]
    mode: str
    reranking_applied: bool
    reranking_reason: str | None
    timings_ms: dict[str, float]
    degraded: str | None = None
    total_ms: float = 0.0


@dataclass(slots=True)
class HealthView:
    document: dict[str, Any]
    latency: list[LatencyRow] = field(default_factory=list)


def _patterns(text: str) -> list[str]:
    """Globs from a textarea: one per line or separated by commas."""
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def _whole_number(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ArgumentError(f"{name} must be a whole number, got {text.strip()[:40]!r}") from None


class UiBackend:
    def __init__(self, runtime: ServerRuntime) -> None:
        self.runtime = runtime

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    @property
    def reranker_enabled(self) -> bool:
        reranker = self.runtime.context.reranker
        return reranker is not None and reranker.enabled

    # --- sources ----------------------------------------------------------------------------------------------

    async def sources(self) -> list[SourceRow]:
        infos = await anyio.to_thread.run_sync(self.runtime.context.store.list_sources)
        start_urls: dict[str, str] = {}
        for job in await self.runtime.jobs.records(JOBS_SHOWN):  # newest first: the first one seen wins
            try:
                start_urls.setdefault(source_id_for(job.url), job.url)
            except ValueError:
                continue
        return [SourceRow(info, start_urls.get(info.source_id)) for info in infos]

    async def source_ids(self) -> list[str]:
        """The sites a search may be limited to (each is searched in its newest version)."""
        entries = await anyio.to_thread.run_sync(self.runtime.context.store.source_versions)
        return sorted({entry.site for entry in entries})

    async def delete_source(self, source_id: str) -> int:
        """Delete one row of the Sources table: one (site, version), by its source key."""
        entries = await anyio.to_thread.run_sync(self.runtime.context.store.source_versions)
        if source_id not in {entry.source_id for entry in entries}:
            raise ArgumentError(f"there is no source {source_id[:100]!r}")
        return await anyio.to_thread.run_sync(self.runtime.context.store.delete_source, source_id)

    async def refresh_source(self, source_id: str) -> str:
        """Refresh the source (its recorded crawls again, gone pages removed) as a job; returns the job id."""
        entries = await anyio.to_thread.run_sync(self.runtime.context.store.source_versions)
        if source_id not in {entry.source_id for entry in entries}:
            raise ArgumentError(f"there is no source {source_id[:100]!r}")
        job = await start_refresh(self.runtime.jobs, source_id)  # no recorded crawl: RefreshInputError
        return job.job_id

    # --- crawls and jobs --------------------------------------------------------------------------------------

    async def start_crawl(self, url: str, max_depth: str, max_pages: str, include: str, exclude: str) -> str:
        spec = CrawlOptions.build(
            self.settings,
            url=url,
            max_depth=_whole_number("max_depth", max_depth),
            max_pages=_whole_number("max_pages", max_pages),
            include=_patterns(include) or None,
            exclude=_patterns(exclude) or None,
            kind="smart",
        )
        return (await self.runtime.jobs.submit(spec)).job_id

    async def jobs(self) -> list[JobRow]:
        return [JobRow.of(job) for job in await self.runtime.jobs.records(JOBS_SHOWN)]

    async def cancel(self, job_id: str) -> None:
        await self.runtime.jobs.cancel(check_job_id(job_id), wait_seconds=CANCEL_WAIT_SECONDS)

    async def resume(self, job_id: str) -> str:
        return (await self.runtime.jobs.resume(check_job_id(job_id))).job_id

    # --- search -----------------------------------------------------------------------------------------------

    async def search(
        self, query: str, *, mode: SearchMode, source_id: str | None, rerank: bool, limit: int
    ) -> SearchOutcome:
        search = self.runtime.context.search
        query = search.validate(query, limit)
        if source_id is not None and source_id not in await self.source_ids():
            raise ArgumentError(f"there is no source {source_id[:100]!r}")
        degraded = None
        if mode != "keyword":
            reason = await self.runtime.embedder_unavailable(EMBEDDER_WAIT_SECONDS)
            if reason is not None:
                mode, degraded = "keyword", f"keyword-only search: {reason}"
        started = anyio.current_time()
        response = await search.search(query, source_id=source_id, match_count=limit, mode=mode, rerank=rerank)
        total_ms = round((anyio.current_time() - started) * 1000, 1)
        return SearchOutcome(
            results=[ResultRow.of(hit) for hit in response.results],
            mode=response.search_mode,
            reranking_applied=response.reranking_applied,
            reranking_reason=response.reranking_reason,
            timings_ms=response.timings_ms,
            degraded=degraded,
            total_ms=total_ms,
        )

    # --- health -----------------------------------------------------------------------------------------------

    async def health(self) -> HealthView:
        document = await self.runtime.health()
        if not self.runtime.started:
            return HealthView(document)
        return HealthView(document, latency_rows(self.runtime.context.registry))
