"""Crawl → chunk → embed → store, as a pipeline: fetching and chunking go on while earlier pages are embedded
and stored.

Nothing blocking runs on the event loop: store calls, chunking and embedding go to worker threads, and embedding
is sent in batches of EMBEDDING_BATCH_SIZE texts of similar token counts (the texts of several pages sorted by
length, so a batch pads little: in page order the Python docs' batches were 1.7× their real tokens), so a
cancellation or the CRAWL_TIMEOUT_SECONDS deadline (which
covers the whole run, embedding and storing included) takes effect between two batches. A failure of the
embedder or of the store as a whole ends the run with one `SystemicError`; a failure of one page is recorded and
the crawl goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

import anyio
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from crawlrag.batching import plan_batches
from crawlrag.chunking import chunk_markdown
from crawlrag.code_examples import extract_code_examples
from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlProgress, CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.crawler import Validators
from crawlrag.crawl.urls import normalize_url, source_id_for, url_kind
from crawlrag.embeddings import Embedder, EmbeddingError
from crawlrag.llm import Enricher, build_enricher
from crawlrag.local import LocalOptions, crawl_local, is_local_target
from crawlrag.models import Chunk, CodeExample, Page, StoredPage, content_hash
from crawlrag.pipeline.failures import SystemicError, is_systemic, missing_model_path, systemic
from crawlrag.pipeline.fingerprint import index_fingerprint
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.report import IndexProgress, IndexReport, embedding_text
from crawlrag.sources.versions import LATEST, source_key
from crawlrag.store import EmbeddingMismatchError, PageWrite, Store
from crawlrag.summaries import summarize_source
from crawlrag.tokens import TokenCounter

__all__ = ["EMBED_BATCH_CHUNKS", "IndexProgress", "IndexReport", "Indexer", "SystemicError", "embedding_text"]

log = logging.getLogger(__name__)

# Pages are embedded together until a batch holds this many chunks: big batches keep the model busy and let texts
# of similar length share a forward pass (the more texts sorted together, the less padding), while the bound
# keeps memory flat and progress visible on large sites.
EMBED_BATCH_CHUNKS = 512
PAGE_QUEUE_SIZE = 64
# Chunked pages waiting for the embedder: enough for a full batch of typical pages, bounded so memory stays flat.
PREPARED_QUEUE_SIZE = 64
# Tokens the model adds around every input ([CLS] and [SEP] for BERT-like encoders).
_SPECIAL_TOKENS = 2
# A page this many times longer than MAX_CHUNKS_PER_PAGE_INDEXED full chunks is skipped without chunking it.
_OVERSIZE_FACTOR = 4


@dataclass(slots=True)
class _Prepared:
    page: Page
    chunks: list[Chunk]
    texts: list[str]
    hashes: list[str]
    examples: list[CodeExample]
    reprocessed: bool
    new: bool  # no page was stored under its URL


class Indexer:
    """Indexes one crawl into the store with the given embedder and (already entered) crawler."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: Embedder,
        crawler: Crawler,
        *,
        enricher: Enricher | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.crawler = crawler
        # LLM_PROVIDER=none builds none, and every text below is made exactly as without an LLM.
        self.enricher = enricher if enricher is not None else build_enricher(settings)
        self._owns_enricher = enricher is None and self.enricher is not None
        self._known_sources: set[str] = set()
        self._chunk_size = settings.chunk_size
        self._force = False
        self._refresh = False
        self._fingerprint = ""
        self._token_counter: TokenCounter | None = None
        self._max_tokens: int | None = None
        self._version = LATEST
        # Web crawls file every page under one source key, (the start URL's site, the crawl's version); local
        # sources learn their site while they are read.
        self._source_key: str | None = None

    async def run(
        self,
        request: CrawlRequest | CrawlOptions,
        on_progress: Callable[[IndexProgress], None] | None = None,
        *,
        refresh: bool = False,
    ) -> IndexReport:
        """Crawl and index. A `refresh` re-runs a recorded crawl: sitemap pages whose `<lastmod>` is not newer
        than the stored copy are not fetched, and the crawl is not recorded again (see `record_crawl`)."""
        options = request if isinstance(request, CrawlOptions) else CrawlOptions.from_request(request)
        # Folders, files, archives and repositories are read by crawlrag.local (under ALLOWED_PATHS), not fetched.
        local = is_local_target(options.url)
        start = None if local else normalize_url(options.url)  # a bad URL fails here, before any work starts
        self._version = options.version
        self._source_key = None if start is None else source_key(source_id_for(start), options.version)
        self._chunk_size = options.chunk_size_for(self.settings)
        self._force = options.force
        self._refresh = refresh
        self._fingerprint = index_fingerprint(
            self.settings, chunk_size=self._chunk_size, embedding_model=self.embedder.model_name
        )
        started = time.perf_counter()
        report = IndexReport(IndexProgress(max_pages=options.max_pages))
        notify = on_progress or (lambda progress: None)
        try:
            with anyio.move_on_after(self.settings.crawl_timeout_seconds) as deadline:
                ready = anyio.Event()
                send, receive = anyio.create_memory_object_stream[Page](PAGE_QUEUE_SIZE)
                async with anyio.create_task_group() as outer:
                    # The model loads while the first pages are fetched; a model that cannot load ends the run.
                    outer.start_soon(self._preflight, start, ready)
                    async with anyio.create_task_group() as group:
                        group.start_soon(self._consume, receive, report, notify, ready)
                        await self._produce(options, send, report, notify, ready)
                    outer.cancel_scope.cancel()  # nothing was fetched that needs the model (yet)
            report.time_limit_reached = deadline.cancelled_caught
            with anyio.CancelScope(shield=True):  # a summary is a few store calls; a cancelled run still gets it
                await anyio.to_thread.run_sync(self._summarize_sources, report, start)
                if not refresh:
                    await anyio.to_thread.run_sync(self._record_crawl, options, report)
        except BaseExceptionGroup as group_error:
            # Callers expect the error itself (a refused URL, a model mismatch), not the task group around it.
            # The run nests two task groups, so a single error can sit inside two groups.
            error: BaseException = group_error
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            if error is group_error:
                raise
            raise error from None
        finally:
            if self.enricher is not None:
                report.llm = self.enricher.status()
                if self._owns_enricher:
                    self.enricher.close()
        report.seconds = time.perf_counter() - started
        notify(report.progress)
        return report

    async def _preflight(self, start: str | None, ready: anyio.Event) -> None:
        """Load the model; a model that cannot load, or a source indexed with another one, fails the whole run."""
        missing = missing_model_path(self.settings)
        if missing is not None:
            raise SystemicError(f"the embedding model cannot be used: {missing}")
        try:
            await anyio.to_thread.run_sync(self.embedder.load, abandon_on_cancel=True)
        except EmbeddingError as exc:
            raise systemic(exc, "the embedding model cannot be used") from exc
        self._token_counter, self._max_tokens = await anyio.to_thread.run_sync(self._token_window)
        if start is not None:
            await anyio.to_thread.run_sync(self._check_known_source, start)
        ready.set()

    async def _produce(
        self,
        options: CrawlOptions,
        send: MemoryObjectSendStream[Page],
        report: IndexReport,
        notify: Callable[[IndexProgress], None],
        ready: anyio.Event,
    ) -> None:
        progress = report.progress
        request = options.request()

        def crawl_progress(update: CrawlProgress) -> None:
            progress.discovered = update.discovered
            notify(progress)

        async with send:
            waited = time.perf_counter()
            pages = (
                crawl_local(request.url, self.settings, request, LocalOptions(options.source_id, options.ref))
                if is_local_target(request.url)
                else self.crawler.crawl(
                    request,
                    validators=self._validators,
                    on_progress=crawl_progress,
                    fresh=self._fresh if self._refresh else None,
                )
            )
            async with aclosing(aiter(pages)) as results:  # see Crawler.crawl
                async for item in results:
                    report.timings["crawl"] += time.perf_counter() - waited
                    progress.fetched += 1
                    if isinstance(item, PageFailure):
                        progress.failed += 1
                        report.failures.append(item)
                    elif isinstance(item, PageSkipped):
                        if item.reason == "not modified":
                            report.reached.add(item.url)
                            await ready.wait()  # the source's model is checked before the page counts as unchanged
                            await self._unchanged_by_validators(item.url, report)
                        else:
                            progress.skipped += 1
                            report.skipped.append(item)
                    else:
                        item = self._versioned(item)
                        report.reached.add(item.url)
                        report.source_ids.add(item.source_id)
                        report.timings["convert"] += item.convert_seconds  # part of "crawl", shown on its own
                        await send.send(item)
                    notify(progress)
                    waited = time.perf_counter()

    def _versioned(self, page: Page) -> Page:
        """The page filed under the crawl's version of its site."""
        if self._version == LATEST:
            return page
        return replace(page, source_id=source_key(page.source_id, self._version))

    def _validators(self, url: str) -> Validators | None:
        """The stored page's validators and links for a conditional request, unless it has to be processed again."""
        if self._source_key is None:
            return None
        stored = self.store.get_page(url, self._source_key)
        if stored is None or self._force or stored.fingerprint != self._fingerprint:
            return None
        return Validators(stored.etag, stored.last_modified, stored.links)

    def _fresh(self, url: str, lastmod: datetime) -> bool:
        """Whether the stored page is at least as new as its sitemap `<lastmod>` (and needs no processing)."""
        if self._source_key is None:
            return False
        stored = self.store.get_page(url, self._source_key)
        if stored is None or self._force or stored.fingerprint != self._fingerprint:
            return False
        return stored.crawled_at >= lastmod

    def _record_crawl(self, options: CrawlOptions, report: IndexReport) -> None:
        """Remember the crawl with each source it stored pages of, for `crawlrag refresh` and the schedule."""
        for source_id, urls in report.pages_by_source.items():
            if not urls:
                continue
            try:
                self.store.record_crawl(source_id, options.url, options.to_stored(), options.refresh_interval_hours)
            except Exception:  # what was stored stays searchable; only the next refresh of this source is affected
                log.exception("could not record the crawl of %s for refreshes", source_id)

    async def _unchanged_by_validators(self, url: str, report: IndexReport) -> None:
        stored = None
        if self._source_key is not None:
            stored = await anyio.to_thread.run_sync(self.store.get_page, url, self._source_key)
        if stored is not None:
            await anyio.to_thread.run_sync(self._ensure_source, stored.source_id)
            await anyio.to_thread.run_sync(self.store.touch_page, url, stored.source_id)
            report.source_ids.add(stored.source_id)
            report.pages_by_source[stored.source_id].append(url)
        report.progress.unchanged += 1

    async def _consume(
        self,
        receive: MemoryObjectReceiveStream[Page],
        report: IndexReport,
        notify: Callable[[IndexProgress], None],
        ready: anyio.Event,
    ) -> None:
        """Chunk pages as they arrive while a second task embeds and stores what is chunked.

        Chunking and storing used to run between two embedding batches, so the model stood idle for them (on
        the Python docs 12 s of chunking and 3 s of writes); now only the embedder waits on the chunker when
        it has nothing chunked left.
        """
        send_prepared, receive_prepared = anyio.create_memory_object_stream[_Prepared](PREPARED_QUEUE_SIZE)
        async with anyio.create_task_group() as group:
            group.start_soon(self._embed_and_store, receive_prepared, report, notify)
            async with send_prepared, receive:
                async for page in receive:
                    await ready.wait()
                    item = await self._prepare_or_fail(page, report)
                    if item is not None:
                        await send_prepared.send(item)

    async def _embed_and_store(
        self,
        receive: MemoryObjectReceiveStream[_Prepared],
        report: IndexReport,
        notify: Callable[[IndexProgress], None],
    ) -> None:
        async with receive:
            async for item in receive:
                batch = [item]
                texts = len(item.texts) + len(item.examples)
                # Take whatever else is chunked already, so embedding runs in large batches of sorted lengths.
                while texts < EMBED_BATCH_CHUNKS:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    texts += len(batch[-1].texts) + len(batch[-1].examples)
                await self._index_batch(batch, report, notify)
                notify(report.progress)

    async def _prepare_or_fail(self, page: Page, report: IndexReport) -> _Prepared | None:
        """The page chunked, or None when it is unchanged, skipped or failed (recorded in the report)."""
        try:
            return await self._prepare(page, report)
        except EmbeddingMismatchError:
            raise
        except Exception as exc:
            if is_systemic(exc):
                raise systemic(exc, "the store cannot be used") from exc
            self._fail(report, page.url, f"could not chunk page: {exc}")  # one bad page must not stop the crawl
            return None

    async def _index_batch(
        self, prepared: list[_Prepared], report: IndexReport, notify: Callable[[IndexProgress], None]
    ) -> None:
        texts = [text for item in prepared for text in item.texts]
        texts += [f"{ex.summary}\n\n{ex.code}" for item in prepared for ex in item.examples]
        vectors = await self._embed(texts, [content_hash(text) for text in texts], report, notify)
        offset = 0
        code_offset = sum(len(item.texts) for item in prepared)
        for item in prepared:
            write = PageWrite(
                item.page,
                item.chunks,
                vectors[offset : offset + len(item.chunks)],
                item.hashes,
                item.examples,
                vectors[code_offset : code_offset + len(item.examples)],
                fingerprint=self._fingerprint,
            )
            offset += len(item.chunks)
            code_offset += len(item.examples)
            await self._write(write, item, report)

    async def _write(self, write: PageWrite, item: _Prepared, report: IndexReport) -> None:
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(self.store.write_page, write)
        except Exception as exc:
            if is_systemic(exc):
                raise systemic(exc, "the store cannot be used") from exc
            self._fail(report, item.page.url, f"could not store page: {exc}")
            return
        finally:
            report.timings["store"] += time.perf_counter() - started
        progress = report.progress
        if item.page.kind == "index":
            progress.index += 1
        else:
            progress.stored += 1
        progress.reprocessed += item.reprocessed
        progress.added += item.new
        progress.changed += not item.new and not item.reprocessed
        progress.chunks_stored += len(item.chunks)
        report.pages_by_source[item.page.source_id].append(item.page.url)

    async def _prepare(self, page: Page, report: IndexReport) -> _Prepared | None:
        stored = await anyio.to_thread.run_sync(self._stored_page, page)
        reprocessed = False
        if stored is not None and stored.content_hash == page.content_hash:
            if stored.fingerprint == self._fingerprint and not self._force:
                await anyio.to_thread.run_sync(self.store.touch_page, page.url, page.source_id)
                report.progress.unchanged += 1
                report.pages_by_source[page.source_id].append(page.url)
                return None
            reprocessed = True
        limit = self.settings.max_chunks_per_page_indexed
        if len(page.markdown) > _OVERSIZE_FACTOR * limit * self._chunk_size:
            self._skip(report, page.url, limit, f"about {len(page.markdown) // self._chunk_size}")
            return None
        # CPU-heavy (and LLM calls when an enricher is set): abandoned on cancel, the result is then unused.
        chunks, texts, examples = await anyio.to_thread.run_sync(self._chunk, page, report, abandon_on_cancel=True)
        if len(chunks) > limit:
            self._skip(report, page.url, limit, str(len(chunks)))
            return None
        hashes = [content_hash(text) for text in texts]
        return _Prepared(page, chunks, texts, hashes, examples, reprocessed, new=stored is None)

    def _stored_page(self, page: Page) -> StoredPage | None:
        self._ensure_source(page.source_id)
        return self.store.get_page(page.url, page.source_id)

    def _chunk(self, page: Page, report: IndexReport) -> tuple[list[Chunk], list[str], list[CodeExample]]:
        started = time.perf_counter()
        # An index page is recorded (its kind, its validators for the next crawl) but has nothing to retrieve.
        markdown = "" if page.kind == "index" else page.markdown
        chunks = chunk_markdown(
            markdown,
            url=page.url,
            title=page.title,
            chunk_size=self._chunk_size,
            max_link_density=self.settings.max_link_density,
            token_counter=self._token_counter,
            max_tokens=self._max_tokens,
        )
        examples: list[CodeExample] = []
        if self.settings.use_agentic_rag:
            examples = extract_code_examples(markdown, url=page.url, min_chars=self.settings.code_min_chars)
        report.timings["chunk"] += time.perf_counter() - started
        if len(chunks) > self.settings.max_chunks_per_page_indexed:
            return chunks, [], []
        texts = self._embedding_texts(page, chunks, report)
        if self.enricher is not None and examples:
            started = time.perf_counter()
            examples = [replace(example, summary=self.enricher.code_summary(example)) for example in examples]
            report.timings["llm"] += time.perf_counter() - started
        return chunks, texts, examples

    def _embedding_texts(self, page: Page, chunks: list[Chunk], report: IndexReport) -> list[str]:
        contextual = self.settings.use_contextual_embeddings
        if not contextual or self.enricher is None or not chunks:
            return [embedding_text(chunk, contextual) for chunk in chunks]
        started = time.perf_counter()
        contexts = self.enricher.chunk_contexts(page.markdown, [chunk.content for chunk in chunks])
        report.timings["llm"] += time.perf_counter() - started
        # Upstream's layout; a chunk the LLM could not situate gets the deterministic title/heading context.
        return [
            f"{context}\n---\n{chunk.content}" if context else embedding_text(chunk, contextual)
            for context, chunk in zip(contexts, chunks, strict=True)
        ]

    async def _embed(
        self,
        texts: Sequence[str],
        hashes: Sequence[str],
        report: IndexReport,
        notify: Callable[[IndexProgress], None],
    ) -> np.ndarray:
        """Embed texts in batches, reusing stored vectors of identical text (boilerplate, unchanged chunks)."""
        started = time.perf_counter()
        known = await anyio.to_thread.run_sync(self.store.embeddings_for, hashes, self.embedder.model_name)
        missing = [i for i, text_hash in enumerate(hashes) if text_hash not in known]
        vectors = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        for i, text_hash in enumerate(hashes):
            if text_hash in known:
                vectors[i] = known[text_hash]
        size = self.settings.embedding_batch_size
        for planned in plan_batches(self._lengths([texts[i] for i in missing]), max_pairs=size, max_tokens=2**31):
            batch = [missing[i] for i in planned]
            try:
                # Abandoned on cancel: the batch in flight finishes in its thread, the run does not wait for it.
                fresh = await anyio.to_thread.run_sync(
                    self.embedder.embed_documents, [texts[i] for i in batch], abandon_on_cancel=True
                )
            except EmbeddingError as exc:
                raise systemic(exc, "embedding failed") from exc
            vectors[batch] = fresh
            report.progress.chunks_embedded += len(batch)
            notify(report.progress)
        report.timings["embed"] += time.perf_counter() - started
        return vectors

    def _lengths(self, texts: Sequence[str]) -> list[int]:
        """Token counts to sort a batch's texts by (characters where the model's counter is unknown)."""
        if self._token_counter is None:
            return [len(text) for text in texts]
        return self._token_counter.counts(texts)

    def _token_window(self) -> tuple[TokenCounter | None, int | None]:
        """What chunks are measured with so none is cut off when embedded: the model's window less [CLS]/[SEP]."""
        window = self.embedder.max_input_tokens
        if window is None:
            return None, None
        return self.embedder.token_counter(), max(16, window - _SPECIAL_TOKENS)

    def _check_known_source(self, start_url: str) -> None:
        """A re-crawl with another embedding model fails before fetching, even when no page has changed."""
        stored = self.store.get_page(start_url, self._source_key)
        if stored is not None:
            self._ensure_source(stored.source_id)

    def _ensure_source(self, source_id: str) -> None:
        if source_id not in self._known_sources:
            self.store.ensure_source(source_id, self.embedder.model_name, self.embedder.dimension)
            self._known_sources.add(source_id)

    @staticmethod
    def _fail(report: IndexReport, url: str, reason: str) -> None:
        log.warning("page %s failed: %s", url, reason)
        report.progress.failed += 1
        report.failures.append(PageFailure(url, reason))

    @staticmethod
    def _skip(report: IndexReport, url: str, limit: int, chunks: str) -> None:
        report.progress.skipped += 1
        report.skipped.append(PageSkipped(url, f"{chunks} chunks, more than MAX_CHUNKS_PER_PAGE_INDEXED={limit}"))

    def _summarize_sources(self, report: IndexReport, start: str | None) -> None:
        """Give each source crawled a summary from its root page: the page the crawl started on (after redirects:
        the crawler finishes the start page before any other, so it is the first URL recorded), or for sitemaps
        and local sources the shallowest URL stored.

        A source's summary is kept when this crawl saw only one of its pages (a single-page crawl of a site), or
        stored nothing new."""
        sources = {source.source_id: source for source in self.store.list_sources()}
        for source_id, urls in report.pages_by_source.items():
            source = sources.get(source_id)
            if source is None or not urls:
                continue
            if source.summary and (len(set(urls)) <= 1 or report.progress.stored == 0):
                continue
            root = urls[0] if start is not None and url_kind(start) != "sitemap" else min(urls, key=_root_rank)
            markdown = self.store.page_markdown(root, source_id)
            stored = self.store.get_page(root, source_id)
            if markdown is None or stored is None:
                continue
            summary = summarize_source(source_id, stored.title, markdown)
            if self.enricher is not None:
                summary = self.enricher.source_summary(source_id, stored.title, markdown, summary)
            self.store.set_source_summary(source_id, summary)


def _root_rank(url: str) -> tuple[int, int, str]:
    path = urlsplit(url).path.rstrip("/")
    return (path.count("/"), len(url), url)
