"""Crawl → chunk → embed → store, as a pipeline: fetching goes on while earlier pages are embedded and stored."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from crawlrag.chunking import chunk_markdown
from crawlrag.code_examples import extract_code_examples
from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlProgress, CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.urls import normalize_url, source_id_for
from crawlrag.embeddings import Embedder
from crawlrag.llm import Enricher, build_enricher
from crawlrag.local import LocalCrawl, LocalOptions, crawl_local, is_local_target
from crawlrag.models import Chunk, CodeExample, Page, content_hash
from crawlrag.store import EmbeddingMismatchError, PageWrite, Store
from crawlrag.summaries import summarize_source

log = logging.getLogger(__name__)

# Pages are embedded together until a batch holds this many chunks: big batches keep the model busy, while the
# bound keeps memory flat and progress visible on large sites.
EMBED_BATCH_CHUNKS = 256
PAGE_QUEUE_SIZE = 64


@dataclass(slots=True)
class IndexProgress:
    max_pages: int
    discovered: int = 0
    fetched: int = 0
    stored: int = 0
    index: int = 0  # index pages (tables of contents, indexes, search pages): followed and recorded, no chunks
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    chunks_stored: int = 0
    chunks_embedded: int = 0

    @property
    def pages_done(self) -> int:
        return self.stored + self.index + self.unchanged + self.skipped + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__} | {"pages_done": self.pages_done}


@dataclass(slots=True)
class IndexReport:
    progress: IndexProgress
    failures: list[PageFailure] = field(default_factory=list)
    skipped: list[PageSkipped] = field(default_factory=list)
    source_ids: set[str] = field(default_factory=set)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    llm: dict[str, Any] = field(default_factory=dict)  # the enricher's calls and fallback reasons, when one ran

    def to_dict(self) -> dict[str, Any]:
        extra = {"llm": self.llm} if self.llm else {}
        return extra | {
            "pages_stored": self.progress.stored,
            "pages_index": self.progress.index,
            "pages_unchanged": self.progress.unchanged,
            "pages_skipped": self.progress.skipped,
            "pages_failed": self.progress.failed,
            "chunks_stored": self.progress.chunks_stored,
            "chunks_embedded": self.progress.chunks_embedded,
            "sources": sorted(self.source_ids),
            "seconds": round(self.seconds, 2),
            "timings_s": {name: round(value, 2) for name, value in self.timings.items()},
            "failures": [{"url": f.url, "reason": f.reason} for f in self.failures],
            "skipped": [{"url": s.url, "reason": s.reason} for s in self.skipped],
        }


def embedding_text(chunk: Chunk, contextual: bool) -> str:
    """What gets embedded for a chunk; with contextual embeddings its page title and heading path lead."""
    if not contextual:
        return chunk.content
    path = " > ".join(part.lstrip("#").strip() for part in chunk.headings.split(" > ") if part)
    context = " > ".join(part for part in (chunk.title, path) if part)
    return f"{context}\n\n{chunk.content}" if context else chunk.content


@dataclass(slots=True)
class _Prepared:
    page: Page
    chunks: list[Chunk]
    texts: list[str]
    hashes: list[str]
    examples: list[CodeExample]


class Indexer:
    """Indexes one crawl request into the store with the given embedder and (already entered) crawler."""

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

    async def run(
        self,
        request: CrawlRequest,
        on_progress: Callable[[IndexProgress], None] | None = None,
        *,
        local: LocalOptions | None = None,
    ) -> IndexReport:
        # Folders, files, archives and repositories are read by crawlrag.local (under ALLOWED_PATHS), not fetched.
        local_crawl = crawl_local(request.url, self.settings, request, local) if is_local_target(request.url) else None
        start = None if local_crawl else normalize_url(request.url)  # a bad URL fails here, before any work starts
        if start is not None:
            await anyio.to_thread.run_sync(self._check_known_source, start)
        started = time.perf_counter()
        report = IndexReport(IndexProgress(max_pages=request.max_pages))
        notify = on_progress or (lambda progress: None)
        send, receive = anyio.create_memory_object_stream[Page](PAGE_QUEUE_SIZE)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._consume, receive, report, notify)
                await self._produce(request, send, report, notify, local_crawl)
            root = local_crawl.root_url if local_crawl else start
            await anyio.to_thread.run_sync(self._summarize_sources, root, report)
        except BaseExceptionGroup as group_error:
            # Callers expect the error itself (a refused URL, a model mismatch), not the task group around it.
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise
        finally:
            if self.enricher is not None:
                report.llm = self.enricher.status()
                if self._owns_enricher:
                    self.enricher.close()
        report.seconds = time.perf_counter() - started
        notify(report.progress)
        return report

    async def _produce(
        self,
        request: CrawlRequest,
        send: MemoryObjectSendStream[Page],
        report: IndexReport,
        notify: Callable[[IndexProgress], None],
        local_crawl: LocalCrawl | None = None,
    ) -> None:
        progress = report.progress

        def crawl_progress(update: CrawlProgress) -> None:
            progress.discovered = update.discovered
            notify(progress)

        def validators(url: str) -> tuple[str | None, str | None] | None:
            stored = self.store.get_page(url)
            return (stored.etag, stored.last_modified) if stored else None

        async with send:
            waited = time.perf_counter()
            pages = local_crawl or self.crawler.crawl(request, validators=validators, on_progress=crawl_progress)
            async for item in pages:
                report.timings["crawl"] += time.perf_counter() - waited
                progress.fetched += 1
                if isinstance(item, PageFailure):
                    progress.failed += 1
                    report.failures.append(item)
                elif isinstance(item, PageSkipped):
                    if item.reason == "not modified":
                        progress.unchanged += 1
                        report.source_ids.add(source_id_for(request.url))  # the crawler files pages under it
                        await anyio.to_thread.run_sync(self.store.touch_page, item.url)
                    else:
                        progress.skipped += 1
                        report.skipped.append(item)
                else:
                    report.source_ids.add(item.source_id)
                    report.timings["convert"] += item.convert_seconds  # part of "crawl", shown on its own
                    await send.send(item)
                notify(progress)
                waited = time.perf_counter()

    async def _consume(
        self, receive: MemoryObjectReceiveStream[Page], report: IndexReport, notify: Callable[[IndexProgress], None]
    ) -> None:
        async with receive:
            async for page in receive:
                batch = [page]
                # Take whatever else is already waiting, so embedding runs in large batches when fetching is fast.
                while sum(len(p.markdown) for p in batch) < EMBED_BATCH_CHUNKS * self.settings.chunk_size:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await anyio.to_thread.run_sync(self._index_batch, batch, report)
                notify(report.progress)

    def _prepare(self, page: Page, report: IndexReport) -> _Prepared | None:
        started = time.perf_counter()
        stored = self.store.get_page(page.url)
        if stored is not None and stored.content_hash == page.content_hash:
            self.store.touch_page(page.url)
            report.progress.unchanged += 1
            return None
        # An index page is recorded (its kind, its validators for the next crawl) but has nothing to retrieve.
        markdown = "" if page.kind == "index" else page.markdown
        chunks = chunk_markdown(
            markdown,
            url=page.url,
            title=page.title,
            chunk_size=self.settings.chunk_size,
            max_link_density=self.settings.max_link_density,
        )
        examples: list[CodeExample] = []
        if self.settings.use_agentic_rag:
            examples = extract_code_examples(markdown, url=page.url, min_chars=self.settings.code_min_chars)
        report.timings["chunk"] += time.perf_counter() - started
        texts = self._embedding_texts(page, chunks, report)
        if self.enricher is not None and examples:
            started = time.perf_counter()
            examples = [replace(example, summary=self.enricher.code_summary(example)) for example in examples]
            report.timings["llm"] += time.perf_counter() - started
        return _Prepared(page, chunks, texts, [content_hash(text) for text in texts], examples)

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

    def _embed(self, texts: Sequence[str], hashes: Sequence[str], report: IndexReport) -> np.ndarray:
        """Embed texts, reusing stored vectors of identical text (boilerplate, unchanged chunks)."""
        started = time.perf_counter()
        known = self.store.embeddings_for(hashes, self.embedder.model_name)
        missing = [i for i, text_hash in enumerate(hashes) if text_hash not in known]
        fresh = self.embedder.embed_documents([texts[i] for i in missing]) if missing else None
        report.progress.chunks_embedded += len(missing)
        vectors = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        for i, text_hash in enumerate(hashes):
            if text_hash in known:
                vectors[i] = known[text_hash]
        if fresh is not None:
            vectors[missing] = fresh
        report.timings["embed"] += time.perf_counter() - started
        return vectors

    def _check_known_source(self, start_url: str) -> None:
        """A re-crawl with another embedding model fails before fetching, even when no page has changed."""
        stored = self.store.get_page(start_url)
        if stored is not None:
            self._ensure_source(stored.source_id)

    def _ensure_source(self, source_id: str) -> None:
        if source_id not in self._known_sources:
            self.store.ensure_source(source_id, self.embedder.model_name, self.embedder.dimension)
            self._known_sources.add(source_id)

    def _index_batch(self, pages: list[Page], report: IndexReport) -> None:
        prepared: list[_Prepared] = []
        for page in pages:
            try:
                self._ensure_source(page.source_id)
                item = self._prepare(page, report)
            except EmbeddingMismatchError:
                raise
            except Exception as exc:  # one bad page must not stop the crawl
                self._fail(report, page.url, f"could not chunk page: {exc}")
                continue
            if item is not None:
                prepared.append(item)
        if not prepared:
            return
        texts = [text for item in prepared for text in item.texts]
        texts += [f"{ex.summary}\n\n{ex.code}" for item in prepared for ex in item.examples]
        hashes = [content_hash(text) for text in texts]
        try:
            vectors = self._embed(texts, hashes, report)
        except Exception as exc:
            for item in prepared:
                self._fail(report, item.page.url, f"embedding failed: {exc}")
            return
        offset = 0
        code_offset = sum(len(item.texts) for item in prepared)
        for item in prepared:
            chunk_vectors = vectors[offset : offset + len(item.chunks)]
            code_vectors = vectors[code_offset : code_offset + len(item.examples)]
            offset += len(item.chunks)
            code_offset += len(item.examples)
            started = time.perf_counter()
            try:
                self.store.write_page(
                    PageWrite(item.page, item.chunks, chunk_vectors, item.hashes, item.examples, code_vectors)
                )
            except Exception as exc:
                self._fail(report, item.page.url, f"could not store page: {exc}")
                continue
            finally:
                report.timings["store"] += time.perf_counter() - started
            if item.page.kind == "index":
                report.progress.index += 1
            else:
                report.progress.stored += 1
            report.progress.chunks_stored += len(item.chunks)

    @staticmethod
    def _fail(report: IndexReport, url: str, reason: str) -> None:
        log.warning("page %s failed: %s", url, reason)
        report.progress.failed += 1
        report.failures.append(PageFailure(url, reason))

    def _summarize_sources(self, root: str | None, report: IndexReport) -> None:
        """Give each source crawled a summary from its root page (the start URL when it was stored)."""
        if root is None:
            return
        sources = {source.source_id: source for source in self.store.list_sources()}
        for source_id in report.source_ids:
            source = sources.get(source_id)
            if source is None or (source.summary and report.progress.stored == 0):
                continue
            markdown = self.store.page_markdown(root)
            stored = self.store.get_page(root)
            if markdown is None or stored is None:
                continue
            summary = summarize_source(source_id, stored.title, markdown)
            if self.enricher is not None:
                summary = self.enricher.source_summary(source_id, stored.title, markdown, summary)
            self.store.set_source_summary(source_id, summary)
