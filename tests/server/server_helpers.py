"""Helpers for the server tests (imported as a plain module; tests/server is on sys.path)."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.embeddings import Embedder
from crawlrag.rerank import Reranker
from crawlrag.server.runtime import ServerRuntime


class FakeReranker:
    """A reranker that is ready at once and scores passages by the query words they contain."""

    def __init__(self, state: str = "ready") -> None:
        self.state = state
        self.load_count = 0

    @property
    def enabled(self) -> bool:
        return True

    def start(self) -> None:
        self.load_count += 1

    async def wait_ready(self, timeout: float) -> bool:
        return self.state in ("ready", "degraded")

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        words = set(query.lower().split())
        return [float(sum(word in passage.lower() for word in words)) for passage in passages]

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "state": self.state, "model": "fake", "load_count": self.load_count}

    def close(self) -> None:
        pass


# What the `start_server` fixture returns: enter it to get a started runtime and its MCP server.
StartServer = Callable[..., AbstractAsyncContextManager[tuple[ServerRuntime, MCPServer[Any]]]]


def make_context(settings: Settings, embedder: Embedder, reranker: Reranker | None = None) -> AppContext:
    """An AppContext like `AppContext.create`, but with the test session's already loaded embedder."""
    return AppContext.create(settings, embedder=embedder, reranker=reranker)


def data(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a tool call; every crawlrag tool returns one with `success`."""
    assert isinstance(result.structured_content, dict), result
    assert "success" in result.structured_content
    assert result.is_error is (not result.structured_content["success"])
    return result.structured_content


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return data(await client.call_tool(tool, arguments))


async def poll_job(client: Client, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """get_crawl_status until the job has ended."""
    with anyio.fail_after(timeout):
        while True:
            status = await call(client, "get_crawl_status", job_id=job_id)
            assert status["success"], status
            if status["status"] not in ("queued", "running"):
                return status
            await anyio.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a `crawlrag serve` subprocess: its own database, offline, local sites allowed."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MCP_", "CRAWL_", "PORT", "HOST", "TRANSPORT", "HEALTH_", "USE_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'server.db'}",
        ALLOW_PRIVATE_NETWORK="true",
        BROWSER="never",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def serve_command() -> list[str]:
    """`crawlrag serve`: the installed command once the CLI registers it, else the same function via typer."""
    from crawlrag.cli import app

    names = {
        command.name or (command.callback.__name__ if command.callback else "") for command in app.registered_commands
    }
    script = Path(sys.executable).parent / "crawlrag"
    if "serve" in names and script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "import typer; from crawlrag.server.commands import serve; typer.run(serve)"]


def wait_for_health(url: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=2)
            return dict(response.json())
        except (httpx.HTTPError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
