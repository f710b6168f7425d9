"""Running the server: stdio (one client, the parent process) or Streamable HTTP with uvicorn."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from crawlrag.config import Settings
from crawlrag.server.app import build_mcp_server
from crawlrag.server.http import build_health_app, build_http_app, startup_warnings
from crawlrag.server.runtime import ServerRuntime

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside an event loop that someone else owns: it leaves signal handling to that owner."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: ASGIApp, host: str, port: int, *, lifespan: Literal["on", "off"]) -> uvicorn.Config:
    # log_config=None: uvicorn's own config sends access logs to stdout; ours sends every log to stderr.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        log_config=None,
        timeout_graceful_shutdown=5,
        server_header=False,
    )


@asynccontextmanager
async def health_listener(runtime: ServerRuntime, host: str, port: int | None) -> AsyncIterator[None]:
    """Serve /health and /metrics on `port` while the block runs (nothing when `port` is None)."""
    if port is None:
        yield
        return
    server = EmbeddedServer(uvicorn_config(build_health_app(runtime), host, port, lifespan="off"))

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; the MCP server itself should keep running
            log.error("could not serve /health on %s:%d; continuing without it", host, port)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        try:
            yield
        finally:
            server.should_exit = True


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            log.info("received %s, shutting down", signal.Signals(received).name)
            scope.cancel()
            return


async def serve_stdio(settings: Settings, runtime: ServerRuntime | None = None) -> None:
    """Serve one client over stdin/stdout until it closes stdin or a signal arrives.

    The runtime is entered inside the SDK's stdio transport (as the server lifespan), after the transport has
    taken over file descriptor 1: from then on anything printed lands on stderr, never in the protocol stream.
    """
    runtime = runtime or ServerRuntime(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[ServerRuntime]:
        async with runtime, health_listener(runtime, settings.host, settings.health_port):
            yield runtime

    mcp = build_mcp_server(runtime, lifespan=lifespan)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_stop_on_signal, tasks.cancel_scope)
        await mcp.run_stdio_async()
        tasks.cancel_scope.cancel()


def serve_http(settings: Settings, runtime: ServerRuntime | None = None) -> None:
    """Serve Streamable HTTP on settings.host:settings.port at /mcp, with /health and /metrics beside it."""
    runtime = runtime or ServerRuntime(settings)
    for warning in startup_warnings(settings, settings.host):
        log.warning(warning)
    app = build_http_app(runtime, build_mcp_server(runtime), settings.host)
    log.info("serving MCP on http://%s:%d/mcp", settings.host, settings.port)
    uvicorn.Server(uvicorn_config(app, settings.host, settings.port, lifespan="on")).run()


def serve(settings: Settings, *, run_jobs: bool = True) -> None:
    """`run_jobs=False`: crawl jobs go to the shared queue for `crawlrag worker` processes to run."""
    runtime = ServerRuntime(settings, run_jobs=run_jobs)
    if settings.transport == "stdio":
        if settings.health_port is not None:
            for warning in startup_warnings(settings, settings.host):
                log.warning(warning)
        anyio.run(serve_stdio, settings, runtime)
    else:
        serve_http(settings, runtime)
