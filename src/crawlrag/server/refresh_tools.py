"""The refresh tool: crawl sources again as they were crawled, as jobs like any crawl."""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from crawlrag.models import JobStatus
from crawlrag.pipeline.refresh_jobs import start_refreshes
from crawlrag.server.arguments import clean_source
from crawlrag.server.crawl_tools import RUNNING_MESSAGE, job_view, progress_reporter
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.tasks import client_wants_tasks
from crawlrag.server.toolkit import ToolResult, ToolSet, add_tool, fail, ok

Source = Annotated[
    str | None, Field(description="The source (site) to refresh, as get_available_sources lists it; omit for all")
]
Version = Annotated[str | None, Field(description="Only this version of it (default: every version)")]

# A refresh writes and reaches out to the web like a crawl, and removes pages that are gone from the site.
REFRESHES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)


def register_refresh_tools(tools: ToolSet, runtime: ServerRuntime) -> None:
    @add_tool(tools, runtime, title="Refresh sources", annotations=REFRESHES)
    async def refresh_source(ctx: Context, source: Source = None, version: Version = None) -> ToolResult:
        """Crawl a source again (or every source) with the crawls it was made with, and report what changed.

        Unchanged pages cost a conditional request (or nothing, when the sitemap's lastmod says so) and are not
        embedded again; new and changed pages are indexed; pages that are gone (404/410, or no longer linked or
        in the sitemap) are removed. A page that merely failed (time-out, server error) is kept, and a site that
        is down loses nothing. Each source is refreshed by a job (see list_crawl_jobs, cancel_crawl); the call
        waits up to CRAWL_WAIT_SECONDS, then returns the jobs still running.
        """
        jobs, problems = await start_refreshes(runtime.jobs, clean_source(source), clean_source(version))
        wait = 0.0 if client_wants_tasks(ctx) else runtime.settings.crawl_wait_seconds
        with anyio.move_on_after(wait):
            for job in jobs:
                await runtime.jobs.wait(job, wait, progress_reporter(ctx))
        views = [job_view(job.record, job) for job in jobs]
        fields = {"jobs": views, "count": len(views), "not_refreshed": problems}
        ended = [job.record for job in jobs if job.record.status.finished]
        failed = [record for record in ended if record.status is not JobStatus.COMPLETED]
        if failed:
            first = failed[0]
            return fail(f"refresh {first.status.value}: {first.error or 'no reason recorded'}", **fields)
        if len(ended) < len(jobs):
            return ok(**fields, message=RUNNING_MESSAGE)
        return ok(**fields)
