"""The HTTP app in-process under uvicorn: shared runtime across sessions, /health, /metrics, auth, DNS rebinding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from server_helpers import FakeReranker, call, free_port, make_context

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder
from crawlrag.rerank import Reranker
from crawlrag.server.app import build_mcp_server
from crawlrag.server.http import build_health_app, build_http_app, startup_warnings, transport_security
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.serve import EmbeddedServer, uvicorn_config

TOKEN = "s3cret-token-for-tests"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def get(url: str) -> httpx.Response:
    # Never the blocking httpx.get: the server under test runs on this test's event loop.
    async with httpx.AsyncClient() as http:
        return await http.get(url)


@asynccontextmanager
async def serve_http(
    settings: Settings, embedder: LocalEmbedder, reranker: Reranker | None = None
) -> AsyncIterator[tuple[str, ServerRuntime, MCPServer[Any]]]:
    """The app `crawlrag serve --transport http` runs, on a free port; its lifespan enters the runtime."""
    context = make_context(settings, embedder, reranker)
    runtime = ServerRuntime(settings, context=context)
    mcp = build_mcp_server(runtime)

    def whoami() -> dict[str, int]:
        """Identities of the shared objects, as seen from inside a tool call of some session."""
        shared = runtime.context
        return {
            "context": id(shared),
            "store": id(shared.store),
            "search": id(shared.search),
            "crawler": id(runtime.crawler),
            "jobs": id(runtime.jobs),
        }

    mcp.add_tool(whoami)
    port = free_port()
    server = EmbeddedServer(uvicorn_config(build_http_app(runtime, mcp, "127.0.0.1"), "127.0.0.1", port, lifespan="on"))
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve)
            with anyio.fail_after(30):
                while not server.started:
                    await anyio.sleep(0.05)
            try:
                yield f"http://127.0.0.1:{port}", runtime, mcp
            finally:
                server.should_exit = True
    finally:
        context.close()


async def test_two_sessions_share_one_runtime(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder, site_url: str
) -> None:
    reranker = FakeReranker()
    settings = server_settings(use_reranking=True)
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with serve_http(settings, embedder, reranker) as (base, runtime, _):
        seen: list[dict[str, Any]] = []

        async def session(crawl: bool) -> None:
            async with Client(base + "/mcp") as client:
                if crawl:
                    await client.call_tool(
                        "crawl_single_page", {"url": site_url + "/api/"}, progress_callback=on_progress
                    )
                seen.append((await client.call_tool("whoami", {})).structured_content or {})
                assert (await call(client, "get_available_sources"))["success"]

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(session, True)
            tasks.start_soon(session, False)
        health = (await get(base + "/health")).json()
        expected = {"context": id(runtime.context), "crawler": id(runtime.crawler), "jobs": id(runtime.jobs)}

    assert len(seen) == 2 and seen[0] == seen[1]
    assert expected.items() <= seen[0].items()
    assert health["reranking_model_status"]["load_count"] == 1
    assert health["embedder"]["load_count"] == 1
    assert updates and updates == sorted(updates)  # notifications reach an HTTP client too


async def test_health_and_metrics(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder, site_url: str
) -> None:
    async with serve_http(server_settings(), embedder) as (base, _, _), Client(base + "/mcp") as client:
        await call(client, "crawl_single_page", url=site_url + "/guide/")
        await call(client, "perform_rag_query", query="user guide")
        await call(client, "perform_rag_query", query="")
        async with httpx.AsyncClient(base_url=base) as http:
            health = await http.get("/health")
            metrics = await http.get("/metrics")

    assert health.status_code == 200
    document = health.json()
    assert document["status"] == "ok" and document["version"]
    assert {"store", "embedder", "reranking_model_status", "jobs"} <= set(document)
    assert document["reranking_model_status"] == {"enabled": False}
    assert document["store"]["ok"] and document["store"]["pages"] == 1
    assert "path" not in document["store"] and "sqlite:" not in health.text  # no file system paths or URLs
    assert document["jobs"]["running"] == 0 and document["jobs"]["finished_in_this_process"] == 1

    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'crawlrag_tool_calls_total{outcome="success",tool="perform_rag_query"} 1.0' in text
    assert 'crawlrag_tool_calls_total{outcome="invalid",tool="perform_rag_query"} 1.0' in text
    assert 'crawlrag_tool_duration_seconds_count{tool="crawl_single_page"} 1.0' in text
    assert 'crawlrag_pages_crawled_total{outcome="stored"} 1.0' in text
    assert "crawlrag_chunks_stored_total" in text
    assert 'crawlrag_embedding_duration_seconds_count{kind="query"}' in text
    assert 'crawlrag_crawl_jobs_finished_total{status="completed"} 1.0' in text


async def test_bearer_token_guards_mcp_and_private_metrics(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder
) -> None:
    settings = server_settings(mcp_auth_token=TOKEN, metrics_public=False)
    async with serve_http(settings, embedder) as (base, _, _):
        async with httpx.AsyncClient(base_url=base) as http:
            missing = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            wrong = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Authorization": "Bearer nope"})
            health = await http.get("/health")
            metrics_denied = await http.get("/metrics")
            metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as authorized,
            Client(streamable_http_client(base + "/mcp", http_client=authorized)) as client,
        ):
            tools = await client.list_tools()

    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200 and TOKEN not in health.text
    assert metrics_denied.status_code == 401 and metrics.status_code == 200
    assert "perform_rag_query" in {tool.name for tool in tools.tools}


async def test_requests_from_other_hosts_and_origins_are_refused(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder
) -> None:
    async with serve_http(server_settings(), embedder) as (base, _, _), httpx.AsyncClient(base_url=base) as http:
        rebound = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Host": "evil.example:8051"})
        cross_origin = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Origin": "http://evil.example"})
        local = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Origin": "http://localhost:3000"})

    assert rebound.status_code == 421
    assert cross_origin.status_code == 403
    assert local.status_code == 200


async def test_health_reports_degraded_and_error(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder
) -> None:
    settings = server_settings(use_reranking=True)
    async with serve_http(settings, embedder, FakeReranker(state="failed")) as (base, _, _):
        degraded = await get(base + "/health")
    stopped = ServerRuntime(settings)
    transport = httpx.ASGITransport(app=build_health_app(stopped))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        error = await http.get("/health")

    assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
    assert degraded.json()["reranking_model_status"]["state"] == "failed"
    assert error.status_code == 503 and error.json()["status"] == "error"


def test_binding_beyond_loopback_without_a_token_warns(server_settings: Callable[..., Settings]) -> None:
    assert startup_warnings(server_settings(), "127.0.0.1") == []
    assert startup_warnings(server_settings(), "localhost") == []
    assert "MCP_AUTH_TOKEN" in startup_warnings(server_settings(), "0.0.0.0")[0]
    assert startup_warnings(server_settings(mcp_auth_token=TOKEN), "0.0.0.0") == []


def test_transport_security_allows_the_bound_name_and_loopback() -> None:
    loopback = transport_security("127.0.0.1")
    assert loopback.enable_dns_rebinding_protection and "localhost:*" in loopback.allowed_hosts
    named = transport_security("docs.internal")
    assert "docs.internal:*" in named.allowed_hosts and "http://docs.internal:*" in named.allowed_origins
    assert transport_security("0.0.0.0").enable_dns_rebinding_protection is False
