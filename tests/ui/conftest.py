"""Fixtures for the web UI tests: local docs sites on 127.0.0.1, `crawlrag serve --transport http` processes, and
headless Chromium through Playwright (the system /usr/bin/chromium, no browser download)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sitegen import build_docs_site, serve_site
from ui_helpers import CHROMIUM, TOKEN, UiServer, start_ui_server


@pytest.fixture(scope="session")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    info = build_docs_site(tmp_path_factory.mktemp("ui-docs-site"))
    with serve_site(info.root) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def hanging_site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The docs site again, but its /slow/page-N.html pages answer only when the site stops: a crawl of /slow/
    runs until it is cancelled, however slow the machine."""
    info = build_docs_site(tmp_path_factory.mktemp("ui-hanging-site"))
    config_file = info.root / ".sitegen.json"
    config = json.loads(config_file.read_text())
    config["slow_seconds"] = 3600
    config_file.write_text(json.dumps(config))
    with serve_site(info.root) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A server without MCP_AUTH_TOKEN."""
    with start_ui_server(tmp_path_factory.mktemp("ui-open")) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A server with MCP_AUTH_TOKEN set to TOKEN."""
    with start_ui_server(tmp_path_factory.mktemp("ui-token"), MCP_AUTH_TOKEN=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
