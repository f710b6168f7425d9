"""Records that cross module boundaries: pages, chunks, search hits, sources and crawl jobs."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, get_args
from urllib.parse import quote

# What a page is (see `crawlrag.crawl.page_kind`): `index` pages are followed but store no chunks.
PageKind = Literal["content", "index", "changelog"]
PAGE_KINDS: tuple[PageKind, ...] = get_args(PageKind)


def utcnow() -> datetime:
    return datetime.now(UTC)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a page's markdown, the unit that is embedded, indexed and returned by search."""

    url: str
    title: str
    headings: str
    chunk_index: int
    content: str
    content_hash: str
    char_count: int
    word_count: int
    anchor: str = ""  # the id of the nearest heading (or signature) at or before the chunk's start

    @classmethod
    def build(cls, *, url: str, title: str, headings: str, chunk_index: int, content: str, anchor: str = "") -> Chunk:
        return cls(
            url=url,
            title=title,
            headings=headings,
            chunk_index=chunk_index,
            content=content,
            content_hash=content_hash(content),
            char_count=len(content),
            word_count=len(content.split()),
            anchor=anchor,
        )


@dataclass(frozen=True, slots=True)
class CodeExample:
    """A fenced code block worth returning on its own, with the prose that explains it."""

    url: str
    chunk_index: int
    language: str
    code: str
    summary: str
    context_before: str
    context_after: str
    headings: str


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page turned into markdown, ready for chunking."""

    url: str
    source_id: str
    title: str
    markdown: str
    content_type: str = "text/html"
    status_code: int = 200
    etag: str | None = None
    last_modified: str | None = None
    kind: PageKind = "content"
    # Seconds spent converting the page's HTML to markdown, for the index report's timings.
    convert_seconds: float = field(default=0.0, compare=False, repr=False)
    # The same-site and other links found on the page, stored so a re-crawl can follow them after a 304.
    links: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def content_hash(self) -> str:
        return content_hash(self.markdown)

    @property
    def word_count(self) -> int:
        return len(self.markdown.split())


@dataclass(frozen=True, slots=True)
class StoredPage:
    url: str
    source_id: str
    title: str
    content_hash: str
    chunk_count: int
    etag: str | None
    last_modified: str | None
    crawled_at: datetime
    kind: PageKind = "content"
    fingerprint: str | None = None  # the index settings it was processed with (crawlrag.pipeline.fingerprint)
    links: tuple[str, ...] | None = None  # its links when stored; None: not recorded (stored by an older version)


@dataclass(slots=True)
class SearchHit:
    """A search result. `score` is what the list is ordered by; the other scores say where it came from."""

    chunk_id: int
    url: str
    source_id: str
    title: str
    headings: str
    chunk_index: int
    content: str
    score: float = 0.0
    similarity: float | None = None
    keyword_score: float | None = None
    rerank_score: float | None = None
    anchor: str = ""
    kind: PageKind = "content"
    # Set by the search service once a search is done: the store hit's `source_id` is the internal key, which
    # the service turns into the site; `version` is the site's version, `indexed_at` when the page was crawled.
    version: str = "latest"
    indexed_at: datetime | None = None

    @property
    def section_url(self) -> str:
        """`url#anchor` of the section the chunk is in, or the page URL when it has no anchor."""
        return section_url(self.url, self.anchor)

    def to_dict(self) -> dict[str, Any]:
        return _with_iso_dates(asdict(self) | {"section_url": self.section_url}, "indexed_at")


def _with_iso_dates(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


def section_url(url: str, anchor: str) -> str:
    return f"{url}#{quote(anchor, safe=_FRAGMENT_SAFE)}" if anchor else url


_FRAGMENT_SAFE = "!$&'()*+,;=:@/?-._~"


@dataclass(slots=True)
class CodeHit:
    example_id: int
    url: str
    source_id: str
    language: str
    code: str
    summary: str
    headings: str
    score: float = 0.0
    similarity: float | None = None
    keyword_score: float | None = None
    rerank_score: float | None = None
    version: str = "latest"  # as SearchHit's
    indexed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return _with_iso_dates(asdict(self), "indexed_at")


@dataclass(frozen=True, slots=True)
class SourceVersion:
    """A source key and the (site, version) it stands for (`crawlrag.sources.versions.source_key`)."""

    source_id: str
    site: str
    version: str


@dataclass(frozen=True, slots=True)
class DeletedCounts:
    """What deleting one source key removed."""

    site: str
    version: str
    pages: int
    chunks: int
    code_examples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    source_id: str
    summary: str
    pages: int
    chunks: int
    words: int
    code_examples: int
    embedding_model: str | None
    embedding_dim: int | None
    created_at: datetime | None
    last_crawled: datetime | None
    # The (site, version) that `source_id` (the internal key) stands for.
    site: str = ""
    version: str = "latest"

    def to_dict(self) -> dict[str, Any]:
        return _with_iso_dates(asdict(self), "created_at", "last_crawled")


# Recorded on a job that a server stop (graceful or not) left unfinished.
INTERRUPTED_REASON = "the server stopped before the crawl ended; resume_crawl re-runs it"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED}


@dataclass(slots=True)
class CrawlJob:
    job_id: str
    url: str
    options: dict[str, Any]
    status: JobStatus = JobStatus.QUEUED
    pages_done: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    pages_total: int | None = None
    chunks_stored: int = 0
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    worker: str | None = None  # "host:pid" of the process that ran it
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        for key in ("created_at", "updated_at", "started_at", "finished_at"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value is not None else None
        return data
