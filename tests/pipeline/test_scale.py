"""Scale-out on PostgreSQL: a `--no-worker` server, `crawlrag worker` processes, leases, resuming and cancel.

The crawled site answers every page after a delay, so a crawl lasts long enough for a worker to be killed in the
middle of it; the lease is short (LEASE_SECONDS) so that the take-over happens within the test's time.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from backends import with_database
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pipeline_helpers import many_pages_site, serve
from providers.provider_peers import Peer, serve_peer
from psycopg import sql as pgsql
from scale_helpers import (
    LEASE_SECONDS,
    call,
    free_port,
    processes,
    sql,
    stored_chunks,
    wait_until_ready,
)
from typer.testing import CliRunner

from crawlrag.cli import app
from crawlrag.config import ConfigError, Settings, load_settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler
from crawlrag.embeddings import LocalEmbedder
from crawlrag.models import JobStatus
from crawlrag.pipeline.jobs import JobManager
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.queue import open_job_queue
from crawlrag.server.app import build_mcp_server
from crawlrag.server.http import build_http_app
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.serve import EmbeddedServer, uvicorn_config

SettingsFactory = Callable[..., Settings]
PAGES = 120
UNFINISHED = ("queued", "running")


@pytest.fixture
def other_postgres_url(postgres_database: str) -> Iterator[str]:
    """A second empty store in the session's database (for a reference crawl)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(schema)))
    yield with_database(postgres_database, search_path=f"{schema},public")
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(schema)))


def embeddings_from(peer: Peer) -> dict[str, str]:
    """Settings for embeddings from the protocol peer: processes start in a second instead of loading a model."""
    return {"EMBEDDING_PROVIDER": "openai", "OPENAI_BASE_URL": peer.url + "/v1", "EMBEDDING_MODEL": "nomic-embed-text"}


async def single_process_crawl(settings: Settings, url: str) -> None:
    context = AppContext.create(settings)
    try:
        async with (
            Crawler(settings) as crawler,
            JobManager(settings, context.store, context.embedder, crawler, max_running=1) as jobs,
        ):
            job = await jobs.submit(CrawlOptions.build(settings, url=url, max_depth=1, max_pages=500))
            with anyio.fail_after(120):
                await job.done.wait()
        assert job.record.status is JobStatus.COMPLETED, job.record
    finally:
        context.close()


async def wait_for(check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    with anyio.fail_after(timeout):
        while not (value := await anyio.to_thread.run_sync(check)):
            await anyio.sleep(every)
    return value


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_killed_workers_crawl_is_finished_by_another_worker_with_each_page_stored_once(
    tmp_path: Path, postgres_url: str, other_postgres_url: str, make_settings: SettingsFactory
) -> None:
    with (
        serve(many_pages_site(PAGES, delay=0.0)) as site,
        serve_peer() as peer,
        processes(tmp_path, postgres_url, **embeddings_from(peer)) as group,
    ):
        server_port, health = free_port(), [free_port(), free_port()]
        serve_args = ("serve", "--transport", "http", "--port", str(server_port), "--no-worker")
        group.start("server", *serve_args, CRAWL_WAIT_SECONDS="0.5")
        workers = [group.start(f"worker{i}", "worker", HEALTH_PORT=str(port)) for i, port in enumerate(health)]
        # While they start: the same site crawled by one process into another store.
        reference = make_settings(
            database_url=other_postgres_url,
            respect_robots_txt=False,
            browser="never",
            **{key.lower(): value for key, value in embeddings_from(peer).items()},
        )
        await single_process_crawl(reference, site.url("/"))
        for port in [server_port, *health]:
            await anyio.to_thread.run_sync(wait_until_ready, f"http://127.0.0.1:{port}/health")

        site.delay = 0.25  # now slow enough for the kill to land mid-crawl
        base = f"http://127.0.0.1:{server_port}/mcp"
        async with Client(base) as client:
            started = await call(client, "smart_crawl_url", url=site.url("/"), max_depth=1, max_concurrent=2)
        job_id = started["job_id"]
        assert started["success"] and started["status"] in ("queued", "running"), started

        def holder_after_15_pages() -> str | None:
            ((pages,),) = sql(postgres_url, "SELECT count(*) FROM pages")
            ((worker,),) = sql(postgres_url, "SELECT worker FROM crawl_jobs WHERE job_id = %s", job_id)
            return worker if pages >= 15 and worker else None

        holder = await wait_for(holder_after_15_pages, timeout=60)
        victim = next(p for p in workers if holder.endswith(f":{p.pid}"))
        survivor = next(p for p in workers if p is not victim)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        ((pages_at_kill,),) = sql(postgres_url, "SELECT count(*) FROM pages")

        async with Client(base) as client:
            with anyio.fail_after(LEASE_SECONDS + 90):
                while (status := await call(client, "get_crawl_status", job_id=job_id))["status"] in UNFINISHED:
                    await anyio.sleep(0.5)
            took = time.monotonic() - killed_at
            listed = await call(client, "list_crawl_jobs")
        assert victim.wait(timeout=10) == -signal.SIGKILL

    assert pages_at_kill < PAGES, "the crawl ended before the kill: make the site slower"
    assert status["status"] == "completed", status
    assert status["worker"].endswith(f":{survivor.pid}")
    assert took <= LEASE_SECONDS + 60, took
    assert listed["jobs"][0]["status"] == "completed" and listed["jobs"][0]["worker"] == status["worker"]
    ((attempts,),) = sql(postgres_url, "SELECT attempts FROM crawl_jobs WHERE job_id = %s", job_id)
    assert attempts == 2
    # Each page exactly once, and the chunks a single process stores.
    pages = Counter(url for (url,) in sql(postgres_url, "SELECT url FROM pages"))
    assert len(pages) == PAGES and set(pages.values()) == {1}
    chunks = stored_chunks(postgres_url)
    assert len(chunks) == len(set(chunks))
    assert sorted(chunks) == sorted(stored_chunks(other_postgres_url))


@asynccontextmanager
async def server(
    settings: Settings, embedder: LocalEmbedder, *, run_jobs: bool = True
) -> AsyncIterator[tuple[ServerRuntime, MCPServer[Any]]]:
    context = AppContext.create(settings, embedder=embedder)
    try:
        async with ServerRuntime(settings, context=context, run_jobs=run_jobs) as runtime:
            yield runtime, build_mcp_server(runtime)
    finally:
        context.close()


def pg_settings(make_settings: SettingsFactory, postgres_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": postgres_url,
        "respect_robots_txt": False,
        "browser": "never",
        "crawl_wait_seconds": 0.2,
        "job_lease_seconds": LEASE_SECONDS,
    }
    return make_settings(**(values | overrides))


@pytest.mark.postgres
async def test_starting_a_second_server_leaves_the_first_ones_jobs_running(
    postgres_url: str, make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    settings = pg_settings(make_settings, postgres_url)
    with serve(many_pages_site(12, delay=0.3)) as site:
        async with server(settings, embedder) as (_, first), Client(first) as one:
            started = await call(one, "smart_crawl_url", url=site.url("/"), max_depth=1, max_concurrent=1)
            job_id = started["job_id"]
            async with server(settings, embedder) as (second_runtime, second), Client(second) as two:
                seen = await call(two, "get_crawl_status", job_id=job_id)
                with anyio.fail_after(60):
                    while (status := await call(two, "get_crawl_status", job_id=job_id))["status"] == "running":
                        await anyio.sleep(0.3)
                interrupted = second_runtime.interrupted_at_start

    assert seen["status"] in ("queued", "running") and interrupted == 0
    assert status["status"] == "completed" and status["progress"]["pages_done"] >= 12, status
    ((attempts,),) = sql(postgres_url, "SELECT attempts FROM crawl_jobs WHERE job_id = %s", job_id)
    assert attempts == 1  # nobody took it over


@pytest.mark.postgres
async def test_cancel_from_another_server_reaches_the_worker_that_holds_the_job(
    postgres_url: str, make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    settings = pg_settings(make_settings, postgres_url)
    with serve(many_pages_site(30, delay=0.5)) as site:
        async with (
            server(settings, embedder) as (worker_runtime, _),
            server(settings, embedder, run_jobs=False) as (_, front),
            Client(front) as client,
        ):
            started = await call(client, "smart_crawl_url", url=site.url("/"), max_depth=1, max_concurrent=1)
            job_id = started["job_id"]

            def running() -> bool:
                job = worker_runtime.jobs.live(job_id)
                return job is not None and job.held and job.record.pages_done >= 1

            await wait_for(running, timeout=30)
            began = time.monotonic()
            cancelled = await call(client, "cancel_crawl", job_id=job_id)
            took = time.monotonic() - began
            status = await call(client, "get_crawl_status", job_id=job_id)

    assert cancelled["success"] and cancelled["status"] == "cancelled", cancelled
    assert took < 5, took
    assert status["status"] == "cancelled" and "cancel" in status["job_error"]
    assert status["progress"]["pages_done"] < 30


def test_worker_and_no_worker_refuse_sqlite(make_settings: SettingsFactory, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    worker = CliRunner().invoke(app, ["worker"], env=env)
    no_worker = CliRunner().invoke(app, ["serve", "--no-worker"], env=env)
    for result in (worker, no_worker):
        assert result.exit_code == 2
        assert "PostgreSQL" in result.output


@asynccontextmanager
async def http_server(settings: Settings, embedder: LocalEmbedder) -> AsyncIterator[str]:
    """The app of `crawlrag serve --transport http` on a free port, in this process."""
    context = AppContext.create(settings, embedder=embedder)
    runtime = ServerRuntime(settings, context=context)
    port = free_port()
    app = build_http_app(runtime, build_mcp_server(runtime), "127.0.0.1")
    server = EmbeddedServer(uvicorn_config(app, "127.0.0.1", port, lifespan="on"))
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve)
            with anyio.fail_after(30):
                while not server.started:
                    await anyio.sleep(0.05)
            try:
                yield f"http://127.0.0.1:{port}/mcp"
            finally:
                server.should_exit = True
    finally:
        context.close()


async def post(http: httpx.AsyncClient, url: str, method: str, **params: Any) -> tuple[httpx.Response, Any]:
    """One JSON-RPC request of a session-based protocol version, without a session id; its result."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    response = await http.post(url, json=body, headers=headers)
    lines = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
    messages = [json.loads(line) for line in lines] if lines else [response.json()]
    return response, next(m for m in messages if m.get("id") == 1)


@pytest.mark.postgres
async def test_stateless_http_servers_answer_any_request_of_a_client(
    postgres_url: str, make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    settings = pg_settings(make_settings, postgres_url, http_stateless=True, crawl_wait_seconds=30)
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    with serve(many_pages_site(3, delay=0.0)) as site:
        async with (
            http_server(settings, embedder) as one,
            http_server(settings, embedder) as two,
            httpx.AsyncClient(timeout=60) as http,
        ):
            started, _ = await post(http, one, "initialize", **hello)
            arguments = {"url": site.url("/"), "max_depth": 1}
            _, crawled = await post(http, two, "tools/call", name="smart_crawl_url", arguments=arguments)
            job_id = crawled["result"]["structuredContent"]["job_id"]
            _, status = await post(http, one, "tools/call", name="get_crawl_status", arguments={"job_id": job_id})

    assert started.status_code == 200 and "mcp-session-id" not in started.headers
    assert crawled["result"]["structuredContent"]["status"] == "completed"
    assert status["result"]["structuredContent"]["status"] == "completed"
    assert status["result"]["structuredContent"]["progress"]["pages_done"] >= 3


@pytest.mark.postgres
async def test_a_crawl_run_by_the_cli_on_postgres_is_left_to_it_by_the_workers(
    postgres_url: str, make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    """`crawlrag crawl` runs its job itself, under a lease: a worker waiting for jobs does not take it."""
    settings = pg_settings(make_settings, postgres_url)
    with serve(many_pages_site(8, delay=0.3)) as site:
        async with server(settings, embedder) as (worker_runtime, _):
            context = AppContext.create(settings, embedder=embedder)
            queue = open_job_queue(settings, context.store)
            try:
                async with (
                    Crawler(settings) as crawler,
                    JobManager(settings, context.store, embedder, crawler, max_running=1, queue=queue) as jobs,
                ):
                    job = await jobs.submit(CrawlOptions.build(settings, url=site.url("/"), max_depth=1))
                    with anyio.fail_after(60):
                        await job.done.wait()
            finally:
                context.close()
            taken = worker_runtime.jobs.live(job.job_id)

    assert job.record.status is JobStatus.COMPLETED and taken is None
    ((attempts, worker),) = sql(postgres_url, "SELECT attempts, worker FROM crawl_jobs WHERE job_id = %s", job.job_id)
    assert attempts == 1 and worker == jobs.worker


@pytest.mark.postgres
async def test_a_server_that_stops_hands_its_running_job_to_the_next_worker(
    postgres_url: str, make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    settings = pg_settings(make_settings, postgres_url)
    # Slow enough that the crawl cannot finish while the first server shuts down, even on a loaded machine.
    with serve(many_pages_site(30, delay=0.5)) as site:
        async with server(settings, embedder) as (runtime, first), Client(first) as client:
            started = await call(client, "smart_crawl_url", url=site.url("/"), max_depth=1, max_concurrent=1)
            job_id = started["job_id"]

            def some_pages_done() -> bool:
                job = runtime.jobs.live(job_id)
                return job is not None and job.held and job.record.pages_done >= 2

            await wait_for(some_pages_done, timeout=30)
        ((status, worker),) = sql(postgres_url, "SELECT status, worker FROM crawl_jobs WHERE job_id = %s", job_id)
        async with server(settings, embedder) as (_, second), Client(second) as client:
            with anyio.fail_after(60):
                while (final := await call(client, "get_crawl_status", job_id=job_id))["status"] in UNFINISHED:
                    await anyio.sleep(0.3)

    assert (status, worker) == ("queued", None)  # handed back at once, not left to a lease
    assert final["status"] == "completed" and final["progress"]["pages_done"] >= 30, final
    ((attempts,),) = sql(postgres_url, "SELECT attempts FROM crawl_jobs WHERE job_id = %s", job_id)
    assert attempts == 2


@pytest.mark.parametrize(
    ("name", "value"), [("worker_concurrency", 0), ("worker_concurrency", 33), ("job_lease_seconds", 1)]
)
def test_scale_settings_are_validated_and_documented(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=name.upper()):
        load_settings(_env_file=None, **{name: value})
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    assert f"\n{name.upper()}=" in example and "\nHTTP_STATELESS=" in example
