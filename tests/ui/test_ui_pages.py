"""The UI app in-process (no browser): a server with a reranker, so the rerank toggle, rerank scores and the
reranker's health show, and the refresh of a source crawls it again as it was crawled."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
from server.server_helpers import FakeReranker, make_context

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.server.http import transport_security
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.ui import build_ui_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def ui_client(
    settings: Settings, embedder: LocalEmbedder
) -> AsyncIterator[tuple[httpx.AsyncClient, ServerRuntime]]:
    context = make_context(settings, embedder, FakeReranker())
    try:
        async with ServerRuntime(settings, context=context) as runtime:
            app = build_ui_app(runtime, transport_security("127.0.0.1"))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8051") as client:
                yield client, runtime
    finally:
        context.close()


async def crawled(runtime: ServerRuntime, url: str) -> None:
    job = await runtime.jobs.submit(CrawlOptions.build(runtime.settings, url=url, max_depth=1, max_pages=10))
    assert await runtime.jobs.wait(job, timeout=120)


async def test_search_with_the_reranker_and_its_health(
    make_settings: Callable[..., Settings], embedder: LocalEmbedder, site_url: str
) -> None:
    settings = make_settings(browser="never", use_reranking=True)
    async with ui_client(settings, embedder) as (client, runtime):
        await crawled(runtime, site_url + "/guide/")
        first = await client.get("/search")
        answer = await client.get("/search", params={"query": "installation guide", "mode": "hybrid", "rerank": "on"})
        without = await client.get("/search", params={"query": "installation guide", "mode": "keyword"})
        health = await client.get("/status")
        sources = await client.get("/")

    assert 'id="rerank" name="rerank" type="checkbox" checked' in first.text  # on by default when available
    assert answer.status_code == 200
    assert "reranking applied" in answer.text
    rerank_scores = re.findall(r"<dt>rerank</dt><dd>([^<]+)</dd>", answer.text)
    assert rerank_scores and all(score != "—" for score in rerank_scores)
    assert "Mode <strong>keyword</strong>" in without.text and "reranking was not requested" in without.text
    assert health.status_code == 200 and "fake" in health.text and "<dd>ready</dd>" in health.text
    assert "Embedding query" in health.text  # a latency row from the histograms
    assert 'aria-label="Refresh 127.0.0.1:' in sources.text


async def test_refresh_crawls_the_source_again_as_a_refresh_job(
    make_settings: Callable[..., Settings], embedder: LocalEmbedder, site_url: str
) -> None:
    async with ui_client(make_settings(browser="never"), embedder) as (client, runtime):
        await crawled(runtime, site_url + "/api/")
        csrf = CSRF.search((await client.get("/")).text)
        assert csrf
        source = site_url.removeprefix("http://")
        answer = await client.post("/sources/refresh", data={"csrf": csrf.group(1), "source": source})
        assert answer.status_code == 303
        job_id = answer.headers["location"].rsplit("=", 1)[1]
        with anyio.fail_after(120):
            while (record := await runtime.jobs.record(job_id)) is None or not record.status.finished:
                await anyio.sleep(0.2)
        unknown = await client.post("/sources/refresh", data={"csrf": csrf.group(1), "source": "nope.example"})

    assert record.url == site_url + "/api/" and record.options["max_depth"] == 1
    assert record.options["kind"] == "refresh" and record.status.value == "completed"
    assert unknown.status_code == 400 and "no source &#39;nope.example&#39;" in unknown.text
