"""Fixtures for the server tests: the generated docs site, and a started server runtime with the shared embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from server_helpers import StartServer, make_context
from sitegen import SiteInfo, build_docs_site, serve_site

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder
from crawlrag.rerank import Reranker
from crawlrag.server.app import build_mcp_server
from crawlrag.server.runtime import ServerRuntime


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> SiteInfo:
    return build_docs_site(tmp_path_factory.mktemp("docs-site"))


@pytest.fixture(scope="session")
def site_url(docs_site: SiteInfo) -> Iterator[str]:
    """Base URL of the docs site, without a trailing slash."""
    with serve_site(docs_site.root) as base_url:
        yield base_url


@pytest.fixture
def server_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(**({"browser": "never"} | overrides))

    return build


@pytest.fixture
def start_server(server_settings: Callable[..., Settings], embedder: LocalEmbedder) -> StartServer:
    """`async with start_server(**settings) as (runtime, mcp):` a started runtime and its MCP server.

    Every start in one test uses the same database file, so a second start is a server restart.
    """

    @asynccontextmanager
    async def start(
        *, reranker: Reranker | None = None, max_running_jobs: int = 2, **overrides: Any
    ) -> AsyncIterator[tuple[ServerRuntime, MCPServer[Any]]]:
        settings = server_settings(**overrides)
        context = make_context(settings, embedder, reranker)
        try:
            async with ServerRuntime(settings, context=context, max_running_jobs=max_running_jobs) as runtime:
                yield runtime, build_mcp_server(runtime)
        finally:
            context.close()

    return start
