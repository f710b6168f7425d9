"""`crawlrag serve` as a real process, over stdio and over Streamable HTTP, driven by the SDK client."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import typer
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from server_helpers import call, data, free_port, serve_command, server_env, wait_for_health
from typer.testing import CliRunner

from crawlrag.server.commands import health

pytestmark = pytest.mark.slow


def health_cli(*args: str) -> Any:
    app = typer.Typer()
    app.command()(health)
    return CliRunner().invoke(app, list(args))


async def test_stdio_server_with_the_sdk_client(tmp_path: Path, site_url: str) -> None:
    """List, crawl, query and /health on HEALTH_PORT; stdout carries only MCP messages, logs go to stderr."""
    health_port = free_port()
    command = serve_command()
    parameters = StdioServerParameters(
        command=command[0], args=command[1:], env=server_env(tmp_path, HEALTH_PORT=str(health_port), LOG_LEVEL="INFO")
    )
    stray: list[Exception] = []
    updates: list[float] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):  # the transport could not parse a stdout line as an MCP message
            stray.append(message)

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    with (tmp_path / "stderr.log").open("w+") as errlog, anyio.fail_after(120):
        async with Client(stdio_client(parameters, errlog=errlog), message_handler=on_message) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            crawled = data(
                await client.call_tool(
                    "crawl_single_page", {"url": site_url + "/guide/usage.html"}, progress_callback=on_progress
                )
            )
            answer = await call(client, "perform_rag_query", query="usage of the example project")
            async with httpx.AsyncClient() as http:
                document = (await http.get(f"http://127.0.0.1:{health_port}/health")).json()
        errlog.seek(0)
        stderr = errlog.read()

    assert {"crawl_single_page", "smart_crawl_url", "perform_rag_query", "get_crawl_status"} <= tools
    assert crawled["status"] == "completed" and crawled["result"]["pages_stored"] == 1
    assert updates and updates[-1] == crawled["progress"]["pages_done"]
    assert answer["results"][0]["url"] == site_url + "/guide/usage.html"
    assert document["status"] == "ok" and document["store"]["pages"] == 1
    assert not stray, stray
    # The logs are on stderr, through to a clean shutdown when the client closed stdin.
    assert "crawlrag.server.runtime: crawlrag" in stderr and "crawlrag stopped" in stderr


async def test_http_server_two_sessions_and_health_command(tmp_path: Path, site_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*serve_command(), "--transport", "http", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(tmp_path, LOG_LEVEL="INFO"),
        text=True,
    )
    try:
        await anyio.to_thread.run_sync(wait_for_health, base + "/health")
        results: dict[str, dict[str, Any]] = {}

        async def crawl() -> None:
            async with Client(base + "/mcp") as client:
                results["crawl"] = await call(client, "smart_crawl_url", url=site_url + "/api/", max_depth=1)

        async def sources() -> None:
            async with Client(base + "/mcp") as client:
                results["tools"] = {"names": [tool.name for tool in (await client.list_tools()).tools]}
                results["sources"] = await call(client, "get_available_sources")

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(crawl)
                tasks.start_soon(sources)
            async with Client(base + "/mcp") as client:
                results["query"] = await call(client, "perform_rag_query", query="client api", match_count=3)
        checked = await anyio.to_thread.run_sync(health_cli, "--url", base)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    unreachable = health_cli("--url", base, "--timeout", "2")

    assert results["crawl"]["status"] == "completed"
    assert "perform_rag_query" in results["tools"]["names"] and results["sources"]["success"]
    assert any(hit["url"] == site_url + "/api/client.html" for hit in results["query"]["results"])
    assert checked.exit_code == 0, checked.output
    document = json.loads(checked.stdout)
    assert document["status"] == "ok"
    assert document["embedder"]["load_count"] == 1  # one model for every session
    assert document["jobs"]["finished_in_this_process"] == 1
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal for the conventional exit status.
    assert process.returncode in (0, -signal.SIGTERM), stderr[-2000:]
    assert "crawlrag stopped" in stderr
    assert unreachable.exit_code == 1 and "no health answer" in unreachable.output
