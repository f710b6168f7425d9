"""The crawl tools. A crawl runs as a job: the call waits up to CRAWL_WAIT_SECONDS, then returns the job id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from crawlrag.models import CrawlJob, JobStatus
from crawlrag.pipeline.jobs import Job, ProgressReporter
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.server.arguments import check_int, check_job_id
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.tasks import client_wants_tasks
from crawlrag.server.toolkit import CRAWLS, JOB_CONTROL, READ_ONLY, ToolResult, ToolSet, add_tool, fail, ok

Url = Annotated[str, Field(description="Start URL, http:// or https:// (or file:// under ALLOWED_PATHS)")]
MaxDepth = Annotated[
    int | None,
    Field(description="Link depth to follow from the start page, 0 to 50 (0: this page only; default MAX_DEPTH)"),
]
MaxConcurrent = Annotated[
    int | None, Field(description="Pages fetched at once, 1 to 100 (default and cap: MAX_CONCURRENT)")
]
Force = Annotated[
    bool, Field(description="Re-process every page, even unchanged ones indexed with the current settings")
]
ChunkSize = Annotated[
    int | None, Field(description="Characters per chunk for this crawl, 200 to 20000 (default: CHUNK_SIZE)")
]
MaxPages = Annotated[int | None, Field(description="Stop after this many pages (default and cap: MAX_PAGES)")]
Include = Annotated[list[str] | None, Field(description='Only crawl URLs matching a glob, e.g. ["*/docs/*"]')]
Exclude = Annotated[list[str] | None, Field(description='Skip URLs matching any of these globs, e.g. ["*/blog/*"]')]
JobId = Annotated[str, Field(description="The job_id a crawl tool returned (see list_crawl_jobs)")]
Version = Annotated[
    str | None, Field(description="The site's version to file pages under (default: read from the URL, else latest)")
]
RefreshHours = Annotated[
    float | None, Field(description="Hours between refreshes of this source by the server (0: never)")
]

MAX_LISTED_PROBLEMS = 20
RUNNING_MESSAGE = (
    "The crawl continues in the background. Call get_crawl_status with this job_id to follow it; "
    "search results include its pages as they are stored."
)


def job_view(record: CrawlJob, job: Job | None = None) -> dict[str, Any]:
    """A job as tools show it; `result` (the crawl report) exists for jobs that ended in this server process."""
    view: dict[str, Any] = {
        "job_id": record.job_id,
        "url": record.url,
        "status": record.status.value,
        "crawl_type": record.options.get("kind", "smart"),
        "options": record.options,
        "progress": {
            "pages_done": record.pages_done,
            "pages_total": record.pages_total,
            "pages_failed": record.pages_failed,
            "pages_skipped": record.pages_skipped,
            "chunks_stored": record.chunks_stored,
        },
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "worker": record.worker,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
    }
    if record.error:
        view["job_error"] = record.error
    if job is not None and job.report is not None:
        report = job.report.to_dict()
        for key in ("failures", "skipped"):
            if len(report[key]) > MAX_LISTED_PROBLEMS:
                report[f"{key}_not_listed"] = len(report[key]) - MAX_LISTED_PROBLEMS
                report[key] = report[key][:MAX_LISTED_PROBLEMS]
        report["pages_crawled"] = report["pages_stored"] + report["pages_unchanged"]
        view["result"] = report
    return view


def crawl_answer(job: Job) -> CallToolResult:
    """What a crawl tool returns once its wait ends: the outcome, or the job id to poll while it runs."""
    record = job.record
    view = job_view(record, job)
    if not record.status.finished:
        return ok(**view, message=RUNNING_MESSAGE)
    if record.status is JobStatus.COMPLETED:
        return ok(**view)
    return fail(f"crawl {record.status.value}: {record.error or 'no reason recorded'}", **view)


def ended_answer(runtime: ServerRuntime) -> Callable[[CrawlJob], Awaitable[CallToolResult]]:
    """The final answer of an ended job, as its crawl tool gave (or would have given) it."""

    async def answer(record: CrawlJob) -> CallToolResult:
        job = runtime.jobs.live(record.job_id)
        if job is not None:
            return crawl_answer(job)
        view = job_view(record)
        if record.status is JobStatus.COMPLETED:
            return ok(**view)
        return fail(f"crawl {record.status.value}: {record.error or 'no reason recorded'}", **view)

    return answer


def progress_reporter(ctx: Context) -> ProgressReporter:
    async def report(done: int, total: int | None, message: str) -> None:
        # A no-op unless the client sent a progress token with its call.
        await ctx.report_progress(done, total, message)

    return report


def register_crawl_tools(tools: ToolSet, runtime: ServerRuntime) -> None:
    async def wait_and_answer(ctx: Context, job: Job) -> CallToolResult:
        # A client running the call as a task polls tasks/get instead: answer at once with the job.
        wait = 0.0 if client_wants_tasks(ctx) else runtime.settings.crawl_wait_seconds
        await runtime.jobs.wait(job, wait, progress_reporter(ctx))
        return crawl_answer(job)

    @add_tool(tools, runtime, title="Crawl one page", annotations=CRAWLS)
    async def crawl_single_page(ctx: Context, url: Url, force: Force = False, version: Version = None) -> ToolResult:
        """Crawl one web page (http or https), split it into chunks and store them for perform_rag_query.

        Waits up to CRAWL_WAIT_SECONDS; if the page is not stored by then, returns a job_id and status
        "running" to follow with get_crawl_status.
        """
        options = CrawlOptions.build(
            runtime.settings, url=url, max_depth=0, max_pages=1, kind="single", force=force, version=version
        )
        return await wait_and_answer(ctx, await runtime.jobs.submit(options))

    @add_tool(tools, runtime, title="Crawl a site", annotations=CRAWLS)
    async def smart_crawl_url(
        ctx: Context,
        url: Url,
        max_depth: MaxDepth = None,
        max_concurrent: MaxConcurrent = None,
        chunk_size: ChunkSize = None,
        max_pages: MaxPages = None,
        include: Include = None,
        exclude: Exclude = None,
        force: Force = False,
        version: Version = None,
        refresh_interval_hours: RefreshHours = None,
    ) -> ToolResult:
        """Crawl a documentation site and store its pages for perform_rag_query.

        The URL may be a page (links on the same site are followed to max_depth), a sitemap.xml (its pages are
        crawled) or an llms.txt / text file. Pages already stored and unchanged are recognised and skipped, unless
        the index settings (chunk size, code examples, contextual embeddings, model) changed or force is true.

        Pages are filed under `version` of the site, else the version the URL's path names (/3.11/, /v2/,
        /en/stable/: the crawl then stays under that path unless include is given), else latest.
        With refresh_interval_hours, a running server refreshes the source that often (see refresh_source).

        Waits up to CRAWL_WAIT_SECONDS (sending progress notifications when the client asks for them); a crawl
        still running then continues in the background and the result has its job_id and status "running".
        """
        options = CrawlOptions.build(
            runtime.settings,
            url=url,
            max_depth=max_depth,
            max_pages=max_pages,
            max_concurrent=max_concurrent,
            include=include,
            exclude=exclude,
            chunk_size=chunk_size,
            force=force,
            version=version,
            refresh_interval_hours=refresh_interval_hours,
        )
        return await wait_and_answer(ctx, await runtime.jobs.submit(options))

    @add_tool(tools, runtime, title="Crawl job status", annotations=READ_ONLY)
    async def get_crawl_status(job_id: JobId) -> ToolResult:
        """Status and progress of a crawl job; when it has ended, its result (pages stored, failures...)."""
        job_id = check_job_id(job_id)
        record = await runtime.jobs.record(job_id)
        if record is None:
            return fail(f"no crawl job with id {job_id!r}; list_crawl_jobs shows the known jobs")
        return ok(**job_view(record, runtime.jobs.live(job_id)))

    @add_tool(tools, runtime, title="List crawl jobs", annotations=READ_ONLY)
    async def list_crawl_jobs(
        limit: Annotated[int, Field(description="How many jobs to list, 1 to 200")] = 20,
    ) -> ToolResult:
        """List recent crawl jobs, newest first, with their status and progress."""
        limit = check_int("limit", limit, 1, 200)
        records = await runtime.jobs.records(limit)
        return ok(jobs=[job_view(record) for record in records], count=len(records), **runtime.jobs.counts())

    @add_tool(tools, runtime, title="Cancel a crawl", annotations=JOB_CONTROL)
    async def cancel_crawl(job_id: JobId) -> ToolResult:
        """Stop a running or queued crawl job. Pages it already stored stay searchable."""
        job = await runtime.jobs.cancel(check_job_id(job_id))
        if not job.record.status.finished:  # still writing its current batch
            return ok(**job_view(job.record, job), message="Cancellation requested; the job stops shortly.")
        return ok(**job_view(job.record, job))

    @add_tool(tools, runtime, title="Resume a crawl", annotations=CRAWLS)
    async def resume_crawl(ctx: Context, job_id: JobId) -> ToolResult:
        """Run an ended crawl job again with the same settings, e.g. one interrupted by a server restart.

        Pages stored before and unchanged since are recognised by their content hash and not stored twice.
        Waits like smart_crawl_url and returns the same kind of result, under the same job_id.
        """
        return await wait_and_answer(ctx, await runtime.jobs.resume(check_job_id(job_id)))
