"""`crawlrag serve`, `crawlrag worker` and `crawlrag health`: plain functions for the typer app in crawlrag.cli."""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from typing import Annotated, Any

import anyio
import httpx
import typer

from crawlrag.config import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"
    sse = "sse"  # upstream's name; served as Streamable HTTP


def _load(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**{key: value for key, value in overrides.items() if value is not None})
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        raise typer.Exit(2) from None
    # stderr only: in stdio mode stdout carries nothing but MCP messages. As in the other commands, libraries stay
    # at WARNING (their INFO lines, one per HTTP request, would drown ours) and LOG_LEVEL applies to crawlrag.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("crawlrag").setLevel(settings.log_level)
    return settings


def serve(
    transport: Annotated[
        Transport | None, typer.Option(help="stdio (for `claude mcp add`) or http (Streamable HTTP on /mcp)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind in http mode (default 127.0.0.1, HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port in http mode (default 8051, PORT)")] = None,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker", help="PostgreSQL only: queue crawl jobs for `crawlrag worker` processes, run none here"
        ),
    ] = False,
) -> None:
    """Run the MCP server: over stdio (default) or Streamable HTTP at http://HOST:PORT/mcp."""
    settings = _load(transport=transport.value if transport else None, host=host, port=port)
    if no_worker:
        _require_shared_queue(settings, "--no-worker")
    from crawlrag.server.serve import serve as run  # the server stack is imported only when serving

    run(settings, run_jobs=not no_worker)


def _require_shared_queue(settings: Settings, what: str) -> None:
    from crawlrag.pipeline.queue import QueueUnavailableError, require_shared_queue

    try:
        require_shared_queue(settings, what)
    except QueueUnavailableError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Crawl jobs run at once (default WORKER_CONCURRENCY, 1)")
    ] = None,
) -> None:
    """Run crawl jobs from the shared queue (PostgreSQL) until SIGTERM; /health on HEALTH_PORT when it is set."""
    # The reranker only serves searches, which a worker does not answer.
    settings = _load(worker_concurrency=concurrency, use_reranking=False)
    _require_shared_queue(settings, "`crawlrag worker`")
    from crawlrag.server.worker import run_worker

    anyio.run(run_worker, settings)


def _health_url(url: str | None) -> str:
    if url is None:
        try:
            settings = load_settings()
            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
            url = f"http://{host}:{settings.port}"
        except ConfigError:
            url = "http://127.0.0.1:8051"
    url = url.rstrip("/")
    return url if url.endswith("/health") else url + "/health"


def health(
    url: Annotated[
        str | None, typer.Option(help="Server address, e.g. http://127.0.0.1:8051 (default: from HOST and PORT)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer")] = 10.0,
) -> None:
    """Print the /health JSON of a running server; exit 0 when ok or degraded, 1 when error or unreachable."""
    target = _health_url(url)
    try:
        response = httpx.get(target, timeout=timeout)
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        sys.stderr.write(f"error: no health answer from {target}: {exc}\n")
        raise typer.Exit(1) from None
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if not isinstance(document, dict) or document.get("status") not in ("ok", "degraded"):
        raise typer.Exit(1)
