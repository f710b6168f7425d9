"""The tasks extension (`io.modelcontextprotocol/tasks`, protocol 2026-07-28): crawls as pollable tasks.

A client that declares the extension on its `tools/call` gets, from smart_crawl_url, crawl_single_page and
resume_crawl, a task handle (`resultType: "task"`) instead of a result after CRAWL_WAIT_SECONDS; the task is
the crawl job (task id = job id), so `tasks/get` reports the job's status and progress and, once it ended, the
tool's final result, and `tasks/cancel` cancels the job. Clients without the extension keep the job-id answers.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams, CallToolResult, RequestParams
from pydantic import Field

from crawlrag.models import CrawlJob, JobStatus
from crawlrag.pipeline.jobs import JobError
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.schemas import JOB_ID_PATTERN

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"smart_crawl_url", "crawl_single_page", "resume_crawl"})
POLL_INTERVAL_MS = 1000
_TASK_ID = re.compile(JOB_ID_PATTERN)  # task ids are job ids
_STATUS = {
    JobStatus.QUEUED: "working",
    JobStatus.RUNNING: "working",
    # A crawl that failed is a tool result with isError, which the extension reports as a completed task.
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "completed",
    JobStatus.INTERRUPTED: "completed",
    JobStatus.CANCELLED: "cancelled",
}


class TaskParams(RequestParams):
    task_id: str = Field(alias="taskId")


def _declared(capabilities: Any) -> bool:
    extensions = getattr(capabilities, "extensions", None)
    return isinstance(extensions, dict) and TASKS_EXTENSION in extensions


def client_wants_tasks(ctx: Context[Any]) -> bool:
    """Whether this call's client declared the tasks extension (only then may a task be returned)."""
    try:
        return _declared(ctx.client_capabilities)
    except (AttributeError, RuntimeError, ValueError):  # called outside a request (direct calls in tests)
        return False


def task_state(record: CrawlJob, message: str | None = None) -> dict[str, Any]:
    """The extension's `Task` fields for a crawl job."""
    progress = f"{record.pages_done} pages done, {record.chunks_stored} chunks stored"
    state: dict[str, Any] = {
        "taskId": record.job_id,
        "status": _STATUS[record.status],
        "statusMessage": message
        or (f"{record.status.value}: {progress}" + (f"; {record.error}" if record.error else "")),
        "createdAt": record.created_at.isoformat(),
        "lastUpdatedAt": record.updated_at.isoformat(),
        # Jobs are kept in the store: a task does not expire.
        "ttlMs": None,
        "pollIntervalMs": POLL_INTERVAL_MS,
    }
    return state


class CrawlTasks(Extension):
    """The extension's methods and the `tools/call` interceptor that turns crawl answers into task handles."""

    identifier = TASKS_EXTENSION

    def __init__(self, runtime: ServerRuntime, answer: Callable[[CrawlJob], Awaitable[CallToolResult]]) -> None:
        self.runtime = runtime
        self._answer = answer  # the crawl tools' answer for an ended job

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskParams, self._get),
            MethodBinding("tasks/cancel", TaskParams, self._cancel),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        result = await call_next(ctx)
        if params.name not in TASK_TOOLS or not _declared(ctx.session.client_capabilities):
            return result
        if not isinstance(result, CallToolResult) or result.is_error or not result.structured_content:
            return result  # refused before a job existed: the ordinary failure is the answer
        record = await self.runtime.jobs.record(str(result.structured_content.get("job_id", "")))
        if record is None:
            return result
        return {"resultType": "task", **task_state(record, "the crawl runs as a task; poll tasks/get")}

    async def _record(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> CrawlJob:
        require_client_extension(ctx, TASKS_EXTENSION)
        record = await self.runtime.jobs.record(params.task_id) if _TASK_ID.match(params.task_id) else None
        if record is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to retrieve task: no task {params.task_id[:64]!r}")
        return record

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> HandlerResult:
        record = await self._record(ctx, params)
        state = {"resultType": "complete", **task_state(record)}
        if state["status"] == "completed":
            answer = await self._answer(record)
            state["result"] = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        return state

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> HandlerResult:
        record = await self._record(ctx, params)
        if not record.status.finished:
            # It may have ended meanwhile (or run in another process): cancellation is cooperative.
            with contextlib.suppress(JobError):
                await self.runtime.jobs.cancel(record.job_id)
        return {"resultType": "complete"}
