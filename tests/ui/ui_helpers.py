"""Helpers for the web UI tests (imported as a plain module; tests/ui is on sys.path)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from server.server_helpers import free_port, serve_command, server_env, wait_for_health

CHROMIUM = "/usr/bin/chromium"
TOKEN = "ui-test-token-0123456789"  # MCP_AUTH_TOKEN of the `token_server` fixture
# Generous: the machine running the tests may be busy; the assertions do not depend on how fast it is.
WAIT_MS = 120_000


@dataclass
class UiServer:
    base: str
    process: subprocess.Popen[str]
    log: Path

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.base + "/health", timeout=10).json())

    def wait_for_embedder(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.health()["embedder"].get("ready"):
            assert time.monotonic() < deadline, "the embedding model did not load"
            time.sleep(0.5)


@contextmanager
def start_ui_server(tmp_path: Path, **env: str) -> Iterator[UiServer]:
    """`crawlrag serve --transport http` on a free port of 127.0.0.1, with its own database and local sites allowed."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*serve_command(), "--transport", "http", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=server_env(tmp_path, LOG_LEVEL="INFO", REQUEST_TIMEOUT_SECONDS="600", **env),
            text=True,
        )
        try:
            wait_for_health(f"http://127.0.0.1:{port}/health", timeout=120)
            yield UiServer(f"http://127.0.0.1:{port}", process, log)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class ConsoleErrors:
    """Console errors and uncaught page errors of the UI's own pages (not of crawled sites opened from it)."""

    origin: str
    seen: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self._add(page, f"uncaught: {error}"))

    def _console(self, page: Any, message: Any) -> None:
        if message.type == "error":
            self._add(page, f"{message.text} at {message.location}")

    def _add(self, page: Any, text: str) -> None:
        if page.url.startswith(self.origin):
            self.seen.append(f"{page.url}: {text}")
