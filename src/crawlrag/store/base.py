"""The storage seam. SQLite (embedded default) and PostgreSQL + pgvector implement the same protocol."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from crawlrag.models import (
    Chunk,
    CodeExample,
    CodeHit,
    CrawlJob,
    DeletedCounts,
    Page,
    SearchHit,
    SourceInfo,
    SourceVersion,
    StoredPage,
)


class StoreError(RuntimeError):
    """The store refused or failed an operation; the message is meant for the user."""


class EmbeddingMismatchError(StoreError):
    """A source was indexed with another embedding model or dimension than the one now in use."""


@dataclass(frozen=True, slots=True)
class PageWrite:
    """Everything stored for one page, written in one transaction."""

    page: Page
    chunks: Sequence[Chunk]
    embeddings: np.ndarray
    embed_hashes: Sequence[str]
    code_examples: Sequence[CodeExample] = ()
    code_embeddings: np.ndarray | None = None
    fingerprint: str | None = None  # the index settings the page was processed with


@dataclass(frozen=True, slots=True)
class StoredChunkText:
    """A stored chunk as re-embedding needs it."""

    chunk_id: int
    url: str
    title: str
    headings: str
    chunk_index: int
    content: str


@dataclass(frozen=True, slots=True)
class StoredCodeText:
    example_id: int
    summary: str
    code: str


@dataclass(frozen=True, slots=True)
class SourceTexts:
    source_id: str
    chunks: list[StoredChunkText]
    code_examples: list[StoredCodeText]


@dataclass(frozen=True, slots=True)
class SourceEmbeddings:
    """New vectors for every chunk and code example of one source (ids as `source_texts` returned them)."""

    source_id: str
    chunk_ids: Sequence[int]
    embed_hashes: Sequence[str]
    embeddings: np.ndarray
    code_ids: Sequence[int]
    code_embeddings: np.ndarray

    def check(self, dimension: int) -> None:
        if len(self.chunk_ids) != len(self.embed_hashes) or len(self.chunk_ids) != len(self.embeddings):
            raise ValueError("chunk_ids, embed_hashes and embeddings must have the same length")
        if len(self.code_ids) != len(self.code_embeddings):
            raise ValueError("code_ids and code_embeddings must have the same length")
        for vectors in (self.embeddings, self.code_embeddings):
            if len(vectors) and np.asarray(vectors).shape[1] != dimension:
                raise ValueError(f"embeddings of {self.source_id!r} are not {dimension}-dimensional")


def source_filter(sources: Collection[str] | str | None) -> tuple[str, ...] | None:
    """The source keys a search keeps, in a stable order; None: every source. A lone key is one source (a
    plain `str` is a Collection of its characters, which must never be taken for keys)."""
    if sources is None:
        return None
    if isinstance(sources, str):
        return (sources,)
    return tuple(sorted(set(sources)))


@dataclass(frozen=True, slots=True)
class SourceCrawl:
    """A crawl a source was made with (its start URL and stored `CrawlOptions`): what a refresh runs again."""

    url: str
    options: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshSchedule:
    """When a source was last crawled or refreshed, and its own refresh interval (None: REFRESH_INTERVAL_HOURS)."""

    source_id: str
    interval_hours: float | None
    refreshed_at: datetime | None  # the last refresh's end, whatever its outcome
    last_crawled: datetime | None  # the newest page's crawl (or unchanged re-check) time

    @property
    def last_seen(self) -> datetime | None:
        times = [at for at in (self.refreshed_at, self.last_crawled) if at is not None]
        return max(times) if times else None


class Store(Protocol):
    """Blocking store API: async callers run it in a worker thread."""

    def close(self) -> None: ...

    # --- sources ------------------------------------------------------------------------------------------------
    def ensure_source(self, source_id: str, embedding_model: str, embedding_dim: int) -> None:
        """Create the source, or raise EmbeddingMismatchError if it was indexed with another model."""

    def set_source_summary(self, source_id: str, summary: str) -> None: ...

    def list_sources(self) -> list[SourceInfo]:
        """One entry per source key, i.e. per (site, version), with its counts."""

    def source_versions(self) -> list[SourceVersion]:
        """Every source key with its site and version: cheap (no counts), for resolving a search's scope."""

    def source_embedding(self, source_id: str) -> tuple[str, int] | None:
        """The (model, dimension) a source was indexed with, or None if unknown."""

    def delete_source(self, source_id: str) -> int:
        """Delete one source key; return how many pages it had."""

    def delete_sources(self, source_ids: Collection[str]) -> dict[str, DeletedCounts]:
        """Delete these source keys with their pages, chunks, code examples, vectors and keyword index rows, in one
        transaction; what each had (keys that did not exist are left out)."""

    def source_texts(self, source_id: str) -> SourceTexts:
        """Every stored chunk and code example of a source, in page order, for re-embedding."""

    def replace_embeddings(self, model: str, dimension: int, updates: Sequence[SourceEmbeddings]) -> None:
        """Swap in new vectors for whole sources and record `model` as theirs, in one transaction.

        Raises StoreError when a source gained or lost chunks since `source_texts` (a crawl ran meanwhile), and
        EmbeddingMismatchError when sources not in `updates` keep vectors of another dimension.
        """

    # --- pages --------------------------------------------------------------------------------------------------
    # A page is (source key, url): one URL may be stored under several versions of its site. Lookups with
    # `source_id=None` take the URL's most recently crawled page, whatever its version.
    def get_page(self, url: str, source_id: str | None = None) -> StoredPage | None: ...

    def page_markdown(self, url: str, source_id: str | None = None) -> str | None: ...

    def page_dates(self, pages: Collection[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        """When each (source key, url) page was last crawled (stored or seen unchanged); unknown pages left out."""

    def write_page(self, write: PageWrite) -> None:
        """Replace a page and all its chunks and code examples atomically."""

    def touch_page(self, url: str, source_id: str) -> None:
        """Record that an unchanged page was seen again."""

    def embeddings_for(self, embed_hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        """Stored embeddings of texts already embedded with `model`, keyed by the hash of the embedded text."""

    # --- refresh ------------------------------------------------------------------------------------------------
    def record_crawl(
        self, source_id: str, url: str, options: Mapping[str, Any], refresh_interval_hours: float | None = None
    ) -> None:
        """Remember a crawl of `source_id` from `url` (the latest options per URL win); a non-None
        `refresh_interval_hours` becomes the source's refresh interval (0: never refreshed on a schedule)."""

    def source_crawls(self, source_id: str) -> list[SourceCrawl]:
        """The crawls recorded for a source, oldest first."""

    def refresh_schedule(self) -> list[RefreshSchedule]:
        """Every source's refresh interval and last crawl and refresh times."""

    def mark_refreshed(self, source_id: str) -> None:
        """Record that a refresh of the source just ended."""

    def source_page_urls(self, source_id: str) -> list[str]:
        """The URLs of every stored page of a source."""

    def delete_pages(self, source_id: str, urls: Sequence[str]) -> int:
        """Remove pages of a source with their chunks, code examples, vectors and keyword index rows, in one
        transaction; URLs of other sources or not stored are ignored. Returns how many pages were removed."""

    # --- search -------------------------------------------------------------------------------------------------
    # `sources` keeps only these source keys (`source_filter` reads it); None: every source.
    # `kinds` keeps only chunks of pages of those kinds (`crawlrag.models.PAGE_KINDS`); None: every kind.
    def vector_search(
        self,
        query: np.ndarray,
        limit: int,
        sources: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[SearchHit]: ...

    def keyword_search(
        self, query: str, limit: int, sources: Collection[str] | None = None, kinds: Collection[str] | None = None
    ) -> list[SearchHit]: ...

    def code_vector_search(
        self, query: np.ndarray, limit: int, sources: Collection[str] | None = None
    ) -> list[CodeHit]: ...

    def code_keyword_search(self, query: str, limit: int, sources: Collection[str] | None = None) -> list[CodeHit]: ...

    # --- crawl jobs ---------------------------------------------------------------------------------------------
    def save_job(self, job: CrawlJob) -> None: ...

    def get_job(self, job_id: str) -> CrawlJob | None: ...

    def list_jobs(self, limit: int = 50) -> list[CrawlJob]: ...

    def interrupt_unfinished_jobs(self, alive: Callable[[str | None], bool] = lambda worker: False) -> int:
        """Mark jobs left queued or running as interrupted unless `alive(worker)`; return how many."""

    # --- health -------------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]: ...
