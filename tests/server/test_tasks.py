"""Crawls as tasks (`io.modelcontextprotocol/tasks`): a client that opts in polls tasks/get and can tasks/cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict, Field
from server_helpers import StartServer, call
from sitegen import SLOW_SECONDS
from test_http import serve_http

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder
from crawlrag.server.output_schemas import OUTPUT_SCHEMAS
from crawlrag.server.tasks import TASKS_EXTENSION


class TaskHandle(Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(None, alias="pollIntervalMs")


class TaskParams(RequestParams):
    task_id: str = Field(alias="taskId")


class GetTask(Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskParams


class CancelTask(Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskParams


class AnyResult(Result):
    model_config = ConfigDict(extra="allow")


async def _unresolved(handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
    raise AssertionError("the test reads task handles itself")


class Tasks(ClientExtension):
    identifier = TASKS_EXTENSION

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=_unresolved)]


async def start_task(client: Client, tool: str, **arguments: Any) -> TaskHandle:
    handle = await client.session.call_tool(tool, arguments, allow_claimed=True)
    assert isinstance(handle, TaskHandle), handle
    return handle


async def get_task(client: Client, task_id: str) -> dict[str, Any]:
    result = await client.session.send_request(GetTask(params=TaskParams(taskId=task_id)), AnyResult)
    return result.model_dump(by_alias=True, exclude_none=True)


async def poll(client: Client, task_id: str, until: set[str], timeout: float = 60.0) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        while (state := await get_task(client, task_id))["status"] not in until:
            await anyio.sleep(0.2)
    return state


def slow(site_url: str) -> dict[str, Any]:
    return {"url": site_url + "/slow/", "max_depth": 1, "include": ["/slow/*"]}


async def test_server_advertises_the_tasks_extension(start_server: StartServer) -> None:
    async with start_server() as (_, mcp), Client(mcp) as client:
        capabilities = client.server_capabilities
    assert capabilities.extensions is not None and TASKS_EXTENSION in capabilities.extensions
    # Logging is not declared (deprecated in 2026-07-28; crawlrag logs to stderr).
    assert capabilities.logging is None


async def test_a_task_augmented_crawl_completes_with_the_crawl_report(start_server: StartServer, site_url: str) -> None:
    async with start_server(crawl_wait_seconds=60) as (_, mcp), Client(mcp, extensions=[Tasks()]) as client:
        handle = await start_task(client, "smart_crawl_url", **slow(site_url), max_concurrent=6)
        working = await get_task(client, handle.task_id)
        done = await poll(client, handle.task_id, {"completed", "failed", "cancelled"})

    assert handle.status == "working" and handle.poll_interval_ms and handle.poll_interval_ms > 0
    assert working["resultType"] == "complete" and working["taskId"] == handle.task_id
    assert done["status"] == "completed", done
    report = done["result"]["structuredContent"]
    jsonschema.validate(report, OUTPUT_SCHEMAS["smart_crawl_url"])
    assert report["success"] is True and report["job_id"] == handle.task_id
    assert report["result"]["pages_stored"] == 7


async def test_tasks_cancel_stops_a_running_crawl(start_server: StartServer, site_url: str) -> None:
    async with start_server(crawl_wait_seconds=60) as (_, mcp), Client(mcp, extensions=[Tasks()]) as client:
        handle = await start_task(client, "smart_crawl_url", **slow(site_url), max_concurrent=1)
        with anyio.fail_after(SLOW_SECONDS * 3):
            await client.session.send_request(CancelTask(params=TaskParams(taskId=handle.task_id)), AnyResult)
        state = await poll(client, handle.task_id, {"completed", "failed", "cancelled"})
        status = await call(client, "get_crawl_status", job_id=handle.task_id)

    assert state["status"] == "cancelled"
    assert status["status"] == "cancelled"
    assert status["progress"]["pages_done"] < 7


async def test_a_client_without_the_extension_still_gets_a_job_id(start_server: StartServer, site_url: str) -> None:
    async with start_server(crawl_wait_seconds=0.1) as (_, mcp), Client(mcp) as client:
        started = await call(client, "smart_crawl_url", **slow(site_url), max_concurrent=6)
        await call(client, "cancel_crawl", job_id=started["job_id"])

    assert started["success"] is True and started["status"] in ("queued", "running")
    assert "get_crawl_status" in started["message"]


async def test_refused_arguments_are_answered_without_a_task(start_server: StartServer) -> None:
    async with start_server() as (_, mcp), Client(mcp, extensions=[Tasks()]) as client:
        result = await client.session.call_tool("smart_crawl_url", {"url": "ftp://example.com/"}, allow_claimed=True)
    assert isinstance(result, CallToolResult) and result.is_error


async def test_tasks_methods_need_the_extension(start_server: StartServer) -> None:
    async with start_server() as (_, mcp), Client(mcp) as plain, Client(mcp, extensions=[Tasks()]) as opted:
        with pytest.raises(MCPError) as missing:
            await get_task(plain, "0123456789abcdef")
        with pytest.raises(MCPError) as unknown:
            await get_task(opted, "0123456789abcdef")

    assert missing.value.error.code == -32021  # missing required client capability
    assert unknown.value.error.code == -32602  # invalid params: no such task


async def test_tasks_over_streamable_http(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder, site_url: str
) -> None:
    async with serve_http(server_settings(crawl_wait_seconds=60), embedder) as (base, _, _):
        async with Client(base + "/mcp", extensions=[Tasks()]) as client:
            handle = await start_task(client, "crawl_single_page", url=site_url + "/guide/install.html")
            done = await poll(client, handle.task_id, {"completed", "failed", "cancelled"})
        async with Client(base + "/mcp") as plain:
            again = await call(plain, "crawl_single_page", url=site_url + "/guide/install.html")

    assert done["status"] == "completed" and done["result"]["structuredContent"]["result"]["pages_stored"] == 1
    assert again["status"] == "completed" and again["result"]["pages_unchanged"] == 1
