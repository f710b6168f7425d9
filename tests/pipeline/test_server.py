"""The server side of the pipeline: honest /health, a loop that never blocks, fast shutdown with a crawl running."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from pipeline_helpers import ScriptedSite, SlowStore, cli_env, crawlrag_command, page, serve

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.embeddings import EmbedderWrapper, LocalEmbedder
from crawlrag.embeddings.instrumented import InstrumentedEmbedder
from crawlrag.models import CrawlJob, JobStatus, utcnow
from crawlrag.search import SearchService
from crawlrag.server.app import build_mcp_server
from crawlrag.server.http import build_health_app
from crawlrag.server.runtime import ServerRuntime
from crawlrag.store import open_store

SettingsFactory = Callable[..., Settings]


class GatedEmbedder(EmbedderWrapper):
    """The real model, whose load() waits until the test opens the gate (a model still loading)."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.gate = threading.Event()
        self._inner = inner

    @property
    def inner(self) -> LocalEmbedder:
        return self._inner

    def load(self) -> None:
        self.gate.wait(60)

    def close(self) -> None:
        """The session's shared model is not this server's to close."""


async def test_health_is_503_starting_until_the_embedder_is_ready(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    settings = make_settings()
    gated = GatedEmbedder(embedder)
    context = AppContext.create(settings, embedder=gated)
    try:
        async with ServerRuntime(settings, context=context) as runtime:
            transport = httpx.ASGITransport(app=build_health_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                starting = await http.get("/health")
                gated.gate.set()
                await runtime.embedder_unavailable(timeout=30)
                ready = await http.get("/health")
    finally:
        gated.gate.set()
        context.close()
    assert starting.status_code == 503 and starting.json()["status"] == "starting"
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


async def test_health_and_search_answer_quickly_while_the_store_takes_a_second_per_call(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    links = [f"/p{i}.html" for i in range(6)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link} about installing") for link in links}
    settings = make_settings(respect_robots_txt=False, crawl_wait_seconds=0, browser="never")
    store = open_store(settings)
    slow = SlowStore(store, seconds=1.0)
    wrapped = InstrumentedEmbedder(embedder, __import__("prometheus_client").CollectorRegistry())
    context = AppContext(settings, slow, wrapped, None, SearchService(settings, slow, wrapped, None))  # type: ignore[arg-type]
    try:
        with serve(ScriptedSite(routes)) as site:
            async with ServerRuntime(settings, context=context) as runtime, Client(build_mcp_server(runtime)) as client:
                transport = httpx.ASGITransport(app=build_health_app(runtime))
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                    await http.get("/health")  # the first statistics of the process are waited for
                    await runtime.embedder_unavailable(timeout=60)
                    await client.call_tool("smart_crawl_url", {"url": site.url("/"), "max_depth": 1})
                    worst: dict[str, float] = {"health": 0.0, "search": 0.0}
                    for _ in range(10):
                        started = time.perf_counter()
                        assert (await http.get("/health")).status_code == 200
                        worst["health"] = max(worst["health"], time.perf_counter() - started)
                        started = time.perf_counter()
                        await runtime.context.search.search("installing", mode="keyword")
                        worst["search"] = max(worst["search"], time.perf_counter() - started)
                        await anyio.sleep(0.3)
                    jobs = await runtime.jobs.records(5)
                    states = [job.status for job in jobs]  # the crawl was running all along
                    for job in jobs:
                        if not job.status.finished:
                            await runtime.jobs.cancel(job.job_id)
    finally:
        context.close()
    assert states and states[0] in (JobStatus.RUNNING, JobStatus.QUEUED)
    assert worst["health"] < 0.2 and worst["search"] < 0.2, worst


def test_sqlite_reads_do_not_wait_for_a_writer_waiting_for_the_lock(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    store = open_store(settings)
    assert settings.sqlite_path is not None
    other = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    writer = threading.Thread(target=lambda: store.touch_page("https://example.com/", "example.com"), daemon=True)
    try:
        writer.start()
        time.sleep(0.3)  # the writer now waits in BEGIN IMMEDIATE
        started = time.perf_counter()
        store.stats()
        store.keyword_search("anything", 5)
        seconds = time.perf_counter() - started
    finally:
        other.execute("COMMIT")
        writer.join(30)
        other.close()
        store.close()
    assert seconds < 0.2, seconds


def test_job_records_carry_worker_and_times_in_both_stores(database_url: str, make_settings: SettingsFactory) -> None:
    store = open_store(make_settings(database_url=database_url))
    try:
        started = utcnow()
        job = CrawlJob(job_id="j1", url="https://example.com/", options={}, worker="host-a:123", started_at=started)
        job.status, job.finished_at = JobStatus.COMPLETED, utcnow()
        store.save_job(job)
        alive = CrawlJob(job_id="j2", url="https://example.com/", options={}, worker="host-b:1")
        alive.status = JobStatus.RUNNING
        gone = CrawlJob(job_id="j3", url="https://example.com/", options={}, worker="host-c:2")
        gone.status = JobStatus.RUNNING
        store.save_job(alive)
        store.save_job(gone)
        interrupted = store.interrupt_unfinished_jobs(lambda worker: worker == "host-b:1")
        records = {record.job_id: record for record in store.list_jobs(10)}
    finally:
        store.close()
    assert records["j1"].worker == "host-a:123" and records["j1"].started_at is not None
    assert records["j1"].finished_at is not None and records["j1"].finished_at >= records["j1"].started_at
    assert interrupted == 1
    assert records["j2"].status is JobStatus.RUNNING and records["j3"].status is JobStatus.INTERRUPTED


@pytest.mark.slow
async def test_sigterm_stops_the_server_within_3_seconds_with_a_crawl_running(tmp_path: Path) -> None:
    links = [f"/p{i}.html" for i in range(30)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link}") for link in links}
    with socket_port() as port, serve(ScriptedSite(routes, delay=2.0)) as site:
        env = cli_env(tmp_path, CRAWL_WAIT_SECONDS="0.5", RESPECT_ROBOTS_TXT="false", LOG_LEVEL="INFO")
        process = subprocess.Popen(
            [*crawlrag_command(), "serve", "--transport", "http", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with anyio.fail_after(120):
                while True:
                    try:
                        async with httpx.AsyncClient() as http:
                            if (await http.get(base + "/health")).json()["status"] == "ok":
                                break
                    except (httpx.HTTPError, ValueError):
                        pass
                    await anyio.sleep(0.3)
                async with Client(base + "/mcp") as client:
                    started = await client.call_tool("smart_crawl_url", {"url": site.url("/"), "max_depth": 1})
                    assert started.structured_content is not None
                    assert started.structured_content["status"] == "running", started.structured_content
                    job_id = started.structured_content["job_id"]
                    await anyio.sleep(1.0)
                    process.send_signal(signal.SIGTERM)
                    stopping = time.monotonic()
                    _, stderr = await anyio.to_thread.run_sync(lambda: process.communicate(timeout=30))
                    seconds = time.monotonic() - stopping
        finally:
            process.kill()
    store = open_store(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'cli.db'}"))  # type: ignore[call-arg]
    try:
        record = store.get_job(job_id)
    finally:
        store.close()
    assert seconds < 3, (seconds, stderr[-3000:])
    assert "ASGI callable returned without completing response" not in stderr, stderr[-3000:]
    assert record is not None and record.status is JobStatus.INTERRUPTED


class socket_port:
    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        pass


_ = sys


def test_searches_during_writes_keep_the_vector_index_complete(make_settings: SettingsFactory) -> None:
    import numpy as np

    from crawlrag.models import Chunk, Page
    from crawlrag.store import PageWrite

    store = open_store(make_settings())
    store.ensure_source("s", "m", 8)
    stop = threading.Event()

    def search() -> None:
        query = np.ones(8, dtype=np.float32) / np.sqrt(8)
        while not stop.is_set():
            store.vector_search(query, 5)

    searcher = threading.Thread(target=search, daemon=True)
    searcher.start()
    try:
        for i in range(60):
            url = f"https://example.com/{i % 20}"
            chunks = [
                Chunk.build(url=url, title="t", headings="", chunk_index=j, content=f"c{i} {j}") for j in range(3)
            ]
            vectors = np.random.default_rng(i).random((3, 8), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            page = Page(url=url, source_id="s", title="t", markdown=f"page {i}")
            store.write_page(PageWrite(page, chunks, vectors, [c.content_hash for c in chunks]))
    finally:
        stop.set()
        searcher.join(10)
    found = {hit.chunk_id for hit in store.vector_search(np.ones(8, dtype=np.float32) / np.sqrt(8), 1000)}
    rows = store.stats()["chunks"]
    store.close()
    assert rows == 60 and len(found) == rows
