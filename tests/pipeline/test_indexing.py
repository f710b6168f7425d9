"""The indexer and the job manager: index fingerprints, bounded work, systemic failures, summaries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from pipeline_helpers import ScriptedSite, SlowEmbedder, html, many_pages_site, page, serve, text
from sitegen import wait_until

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import Embedder, EmbeddingError, LocalEmbedder
from crawlrag.models import JobStatus
from crawlrag.pipeline.failures import SystemicError
from crawlrag.pipeline.indexer import PAGE_QUEUE_SIZE, Indexer, IndexReport
from crawlrag.pipeline.jobs import JobManager
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.store import StoreError

SettingsFactory = Callable[..., Settings]

CODE_PAGE = """<!DOCTYPE html><html><head><title>Code page {n}</title></head><body><main><h1>Code page {n}</h1>
<p>How to call the client from your program, explained in enough words to be indexed here.</p>
<pre><code class="language-python">def call_client_{n}(argument):
    value = argument * 2
    return value + {n}
</code></pre></main></body></html>"""


def code_site() -> ScriptedSite:
    routes: dict[str, Any] = {"/": page("Home", "/a.html", "/b.html")}
    for name in ("a", "b"):
        body = CODE_PAGE.format(n=name).encode()
        routes[f"/{name}.html"] = lambda count, body=body: (200, {"Content-Type": "text/html"}, body)
    return ScriptedSite(routes)


async def index(settings: Settings, embedder: Embedder, options: CrawlOptions | CrawlRequest) -> IndexReport:
    context = AppContext.create(settings, embedder=embedder)
    try:
        async with Crawler(settings) as crawler:
            return await Indexer(settings, context.store, context.embedder, crawler).run(options)
    finally:
        context.close()


async def test_turning_on_code_examples_reprocesses_unchanged_pages(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    with serve(code_site()) as site:
        plain = make_settings(respect_robots_txt=False, code_min_chars=20)
        first = await index(plain, embedder, CrawlRequest(site.url("/"), max_depth=1))
        again = await index(plain, embedder, CrawlRequest(site.url("/"), max_depth=1))
        agentic = make_settings(respect_robots_txt=False, code_min_chars=20, use_agentic_rag=True)
        toggled = await index(agentic, embedder, CrawlRequest(site.url("/"), max_depth=1))
        forced = await index(agentic, embedder, CrawlOptions.build(agentic, url=site.url("/"), max_depth=1, force=True))
    context = AppContext.create(agentic, embedder=embedder)
    try:
        examples = context.store.stats()["code_examples"]
    finally:
        context.close()

    assert first.progress.stored == 3 and again.progress.unchanged == 3 and again.progress.stored == 0
    assert toggled.progress.reprocessed == 3 and toggled.to_dict()["pages_reprocessed"] == 3
    assert examples == 2  # the new setting took effect on pages whose content did not change
    assert forced.progress.stored == forced.progress.reprocessed == 3


async def test_a_page_with_too_many_chunks_is_skipped_with_that_reason(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    long_text = "\n\n".join(f"Paragraph {i} has some words in it to make a chunk of its own." * 4 for i in range(60))
    with serve(ScriptedSite({"/long.md": text(long_text, "text/markdown")})) as site:
        settings = make_settings(respect_robots_txt=False, chunk_size=200, max_chunks_per_page_indexed=5)
        report = await index(settings, embedder, CrawlRequest(site.url("/long.md"), max_depth=0))
    assert report.progress.stored == 0 and report.progress.skipped == 1
    assert "MAX_CHUNKS_PER_PAGE_INDEXED=5" in report.skipped[0].reason


async def test_a_huge_llms_txt_is_bounded_by_the_crawl_timeout(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    lines = "\n".join(f"- line {i} of a very long generated list, entry number {i}" for i in range(300_000))
    with serve(ScriptedSite({"/llms.txt": text("# Huge\n\n" + lines)})) as site:
        settings = make_settings(
            respect_robots_txt=False,
            crawl_timeout_seconds=20,
            max_response_bytes=64 * 1024 * 1024,
            max_chunks_per_page_indexed=1_000_000,
        )
        started = time.monotonic()
        report = await index(settings, embedder, CrawlRequest(site.url("/llms.txt"), max_depth=1))
        seconds = time.monotonic() - started
    assert seconds < 20 + 8, seconds  # the bound, plus what one batch in flight and the summary take
    assert report.time_limit_reached and report.progress.stored == 0


async def run_job(
    settings: Settings, embedder: Embedder, url: str, *, cancel_when: Callable[[Any], bool] | None = None, **kw: Any
) -> tuple[Any, float]:
    """Run one crawl job; with `cancel_when(record)`, cancel it once that holds and return the cancel's duration."""
    context = AppContext.create(settings, embedder=embedder)
    try:
        async with (
            Crawler(settings) as crawler,
            JobManager(settings, context.store, context.embedder, crawler, **kw) as jobs,
        ):
            job = await jobs.submit(CrawlOptions.build(settings, url=url, max_depth=0))
            seconds = 0.0
            with anyio.fail_after(120):
                if cancel_when is not None:
                    while not cancel_when(job) and not job.done.is_set():
                        await anyio.sleep(0.05)
                    started = time.monotonic()
                    await jobs.cancel(job.job_id, wait_seconds=30)
                    seconds = time.monotonic() - started
                await job.done.wait()
            return job, seconds
    finally:
        context.close()


async def test_cancel_takes_effect_within_3_seconds_while_embedding(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    long_text = "\n\n".join(f"Paragraph {i} says something different about topic {i}." for i in range(3000))
    slow = SlowEmbedder(embedder, seconds=1.0)
    with serve(ScriptedSite({"/big.md": text(long_text, "text/markdown")})) as site:
        settings = make_settings(respect_robots_txt=False, chunk_size=200, embedding_batch_size=16)
        job, seconds = await run_job(
            settings, slow, site.url("/big.md"), max_running=1, cancel_when=lambda job: slow.calls >= 2
        )
    assert job.record.status is JobStatus.CANCELLED
    assert seconds < 3, seconds
    assert slow.calls < 10  # it stopped embedding: the page has hundreds of batches


async def test_a_known_broken_embedder_fails_the_job_before_it_fetches(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    with serve(ScriptedSite({"/": page("Home")})) as site:
        job, _ = await run_job(
            make_settings(), embedder, site.url("/"), max_running=1, embedder_problem=lambda: "no such model /x/y"
        )
    assert job.record.status is JobStatus.FAILED and "/x/y" in (job.record.error or "")
    assert site.requests == []


class LateFailingEmbedder(SlowEmbedder):
    """A model that fails to load once `until()` holds (a model server that goes away while it starts)."""

    def __init__(self, inner: Embedder, until: Callable[[], bool]) -> None:
        super().__init__(inner, seconds=0.0)
        self.until = until

    def load(self) -> None:
        wait_until(self.until, timeout=60)
        raise EmbeddingError("the model server closed the connection")


async def test_a_model_that_fails_while_fetched_pages_wait_ends_the_run_with_its_error(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    # More pages than the queue holds: the load fails once the crawl has stalled on the full queue (no request
    # for half a second), so the crawl is suspended at a yield with the producer waiting to queue a page.
    # Leaving the crawl without closing it broke the task groups' cancel scopes.
    pages = PAGE_QUEUE_SIZE + 16
    with serve(many_pages_site(pages, delay=0.0)) as site:

        def stalled() -> bool:
            return len(site.requests) > PAGE_QUEUE_SIZE and time.monotonic() - site.requests[-1][0] > 0.5

        settings = make_settings(respect_robots_txt=False)
        request = CrawlRequest(site.url("/"), max_depth=1, max_pages=pages)
        with pytest.raises(SystemicError, match="the model server closed the connection"):
            await index(settings, LateFailingEmbedder(embedder, until=stalled), request)
        assert len(site.requests) < pages  # the crawl was stopped while pages were waiting


class ReadOnlyStore:
    """A store whose writes fail as a read-only database does."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write_page(self, write: Any) -> None:
        self.writes += 1
        raise StoreError("the database /data/crawlrag.db is read-only: check its permissions")


async def test_a_read_only_store_fails_the_job_once(make_settings: SettingsFactory, embedder: LocalEmbedder) -> None:
    links = [f"/p{i}.html" for i in range(10)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link}") for link in links}
    settings = make_settings(respect_robots_txt=False)
    context = AppContext.create(settings, embedder=embedder)
    store = ReadOnlyStore(context.store)
    try:
        with serve(ScriptedSite(routes)) as site:
            async with (
                Crawler(settings) as crawler,
                JobManager(
                    settings,
                    store,
                    context.embedder,
                    crawler,
                    max_running=1,  # type: ignore[arg-type]
                ) as jobs,
            ):
                job = await jobs.submit(CrawlOptions.build(settings, url=site.url("/"), max_depth=1))
                with anyio.fail_after(60):
                    await job.done.wait()
    finally:
        context.close()
    assert job.record.status is JobStatus.FAILED
    assert "read-only" in (job.record.error or "") and job.record.pages_failed == 0
    assert store.writes == 1


async def test_summary_comes_from_the_page_a_redirect_leads_to_and_survives_a_one_page_crawl(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    moved = lambda count: (301, {"Location": "/docs/", "Content-Type": "text/plain"}, b"")  # noqa: E731
    routes = {
        "/": moved,
        "/docs/": page(
            "Example Docs", "/docs/other.html", words="Example Docs explain the example client library in detail."
        ),
        "/docs/other.html": page("Other", words="Another page that talks about something else entirely, at length."),
    }
    settings = make_settings(respect_robots_txt=False)
    with serve(ScriptedSite(routes)) as site:
        await index(settings, embedder, CrawlRequest(site.url("/"), max_depth=1))
        first = sources(settings, embedder)
        await index(settings, embedder, CrawlRequest(site.url("/docs/other.html"), max_depth=0))
        after = sources(settings, embedder)
    assert "example client library" in first
    assert after == first


def sources(settings: Settings, embedder: Embedder) -> str:
    context = AppContext.create(settings, embedder=embedder)
    try:
        (source,) = context.store.list_sources()
        return source.summary
    finally:
        context.close()


@pytest.mark.parametrize("depth", [None, 0])
async def test_options_take_their_defaults_from_the_settings(make_settings: SettingsFactory, depth: Any) -> None:
    settings = make_settings(max_depth=2, max_pages=7, max_concurrent=3, chunk_size=400)
    options = CrawlOptions.build(
        settings, url="https://example.com/", max_depth=depth, max_pages=100, max_concurrent=50
    )
    assert options.max_depth == (2 if depth is None else 0)
    assert (options.max_pages, options.max_concurrent, options.chunk_size_for(settings)) == (7, 3, 400)
    assert CrawlOptions.from_stored(options.url, options.to_stored(), settings) == options


async def test_an_unreachable_embedding_server_fails_the_job_once_naming_it(make_settings: SettingsFactory) -> None:
    from pipeline_helpers import closed_port

    from crawlrag.embeddings import build_embedder

    links = [f"/p{i}.html" for i in range(10)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link}") for link in links}
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    settings = make_settings(
        respect_robots_txt=False, embedding_provider="openai", openai_base_url=base_url, embedding_max_retries=1
    )
    with serve(ScriptedSite(routes)) as site:
        started = time.monotonic()
        job, _ = await run_job(settings, build_embedder(settings), site.url("/"), max_running=1)
        seconds = time.monotonic() - started
    assert job.record.status is JobStatus.FAILED and seconds < 30
    assert "127.0.0.1" in (job.record.error or "") and job.record.pages_failed == 0


class RecordingEmbedder(SlowEmbedder):
    """Records the texts of every embed_documents call."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner, seconds=0.0)
        self.batches: list[list[str]] = []

    def embed_documents(self, texts: Any) -> Any:
        self.batches.append(list(texts))
        return super().embed_documents(texts)


async def test_texts_of_several_pages_are_embedded_in_batches_of_similar_token_counts(
    make_settings: SettingsFactory, embedder: LocalEmbedder
) -> None:
    # Pages alternate short and long paragraphs: in page order every batch would be padded to a long one.
    routes: dict[str, Any] = {"/": page("Home", *(f"/p{i}.html" for i in range(6)))}
    for i in range(6):
        paragraphs = "".join(
            f"<p>long section {i}-{j} {'words about the topic of this section ' * 12}</p>"
            if j % 2
            else f"<p>short paragraph {i}-{j} with a few words.</p>"
            for j in range(6)
        )
        body = html(f"Page {i}", paragraphs)
        routes[f"/p{i}.html"] = lambda count, body=body: (200, {"Content-Type": "text/html"}, body)
    recorder = RecordingEmbedder(embedder)
    with serve(ScriptedSite(routes)) as site:
        settings = make_settings(respect_robots_txt=False, chunk_size=200, embedding_batch_size=4)
        report = await index(settings, recorder, CrawlRequest(site.url("/"), max_depth=1))
    assert report.progress.chunks_embedded > 8
    counter = embedder.token_counter()
    for batch in recorder.batches:
        assert len(batch) <= 4
        counts = counter.counts(batch)
        assert counts == sorted(counts, reverse=True)  # each call longest first, neighbours of similar length
