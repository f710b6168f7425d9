"""Helpers for the scale-out tests: a slow many-page site, `crawlrag` processes on one PostgreSQL schema, SQL checks."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from mcp import Client
from mcp_types import CallToolResult
from pipeline_helpers import cli_env, crawlrag_command

LEASE_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def data(result: CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return data(await client.call_tool(tool, arguments))


def wait_until_ready(url: str, timeout: float = 120.0) -> dict[str, Any]:
    """/health until the embedding model has loaded (status ok)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            last = httpx.get(url, timeout=2).json()
            if last.get("status") == "ok":
                return dict(last)
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready: {last}")


class Processes:
    """`crawlrag` subprocesses sharing one database; every one's stderr goes to a file (shown when a test fails)."""

    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.env = cli_env(
            tmp_path, JOB_LEASE_SECONDS=str(LEASE_SECONDS), RESPECT_ROBOTS_TXT="false", LOG_LEVEL="INFO", **env
        ) | {"DATABASE_URL": database_url}
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [*crawlrag_command(), *args], env=self.env | env, stdout=subprocess.DEVNULL, stderr=log
        )
        self.running.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in self.tmp_path.glob("*.log"))

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def processes(tmp_path: Path, database_url: str, **env: str) -> Iterator[Processes]:
    group = Processes(tmp_path, database_url, **env)
    try:
        yield group
    except BaseException:
        print(group.logs())
        raise
    finally:
        group.stop()


def sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def stored_chunks(url: str) -> list[tuple[str, int, str]]:
    return [(row[0], row[1], row[2]) for row in sql(url, "SELECT url, chunk_number, content FROM crawled_pages")]
