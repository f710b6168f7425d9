"""What an indexing run counts and reports, and the text each chunk is embedded as."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from crawlrag.crawl import PageFailure, PageSkipped
from crawlrag.models import Chunk


@dataclass(slots=True)
class IndexProgress:
    max_pages: int
    discovered: int = 0
    fetched: int = 0
    stored: int = 0
    index: int = 0  # index pages (tables of contents, indexes, search pages): followed and recorded, no chunks
    unchanged: int = 0
    reprocessed: int = 0  # stored although unchanged: the index settings changed since (or force)
    added: int = 0  # stored (or recorded as index pages) for the first time
    changed: int = 0  # stored again because their content changed (reprocessed ones are not counted here)
    removed: int = 0  # gone from the site (a refresh removed them from the store)
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
    # URLs stored or found unchanged, per source: the pages a source summary is chosen from.
    pages_by_source: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    llm: dict[str, Any] = field(default_factory=dict)  # the enricher's calls and fallback reasons, when one ran
    time_limit_reached: bool = False
    # URLs the crawl found to exist (stored, unchanged, index or too big to index): what a refresh keeps.
    reached: set[str] = field(default_factory=set)
    # A refresh only: why pages not reached were kept (the crawl could not see the whole site), else None.
    removal_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"llm": self.llm} if self.llm else {}
        if self.removal_skipped is not None:
            extra["removal_skipped"] = self.removal_skipped
        return extra | {
            "pages_added": self.progress.added,
            "pages_changed": self.progress.changed,
            "pages_removed": self.progress.removed,
            "pages_stored": self.progress.stored,
            "pages_index": self.progress.index,
            "pages_unchanged": self.progress.unchanged,
            "pages_reprocessed": self.progress.reprocessed,
            "pages_skipped": self.progress.skipped,
            "pages_failed": self.progress.failed,
            "chunks_stored": self.progress.chunks_stored,
            "chunks_embedded": self.progress.chunks_embedded,
            "sources": sorted(self.source_ids),
            "seconds": round(self.seconds, 2),
            "time_limit_reached": self.time_limit_reached,
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
