"""Checking tool arguments before anything runs or is stored, with messages that say what is accepted."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crawlrag.config import Settings
from crawlrag.crawl import CrawlRequest
from crawlrag.crawl.urls import normalize_url
from crawlrag.local import LocalAccessError, check_local_url

MAX_URL_CHARS = 2048
MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 500
# Bounds of the corresponding settings; the settings themselves cap what a tool call may ask for.
DEPTH_RANGE = (0, 50)
PAGES_RANGE = (1, 1_000_000)
CONCURRENCY_RANGE = (1, 100)
CHUNK_SIZE_RANGE = (200, 20_000)
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


class ArgumentError(ValueError):
    """A tool argument is not acceptable; the message names it and says what is allowed."""


def check_int(name: str, value: Any, low: int, high: int) -> int:
    # bool is an int subclass; `true` for a page count is a caller mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ArgumentError(f"{name} must be between {low} and {high}, got {value}")
    return value


def check_url(url: Any) -> str:
    """The normalised http(s) URL, or ArgumentError saying why it cannot be crawled."""
    if not isinstance(url, str) or not url.strip():
        raise ArgumentError("url must be a non-empty http:// or https:// URL")
    if len(url) > MAX_URL_CHARS:
        raise ArgumentError(f"url is {len(url)} characters long; the limit is {MAX_URL_CHARS}")
    try:
        return normalize_url(url)
    except ValueError as exc:  # CrawlInputError: the message names the URL and what is supported
        raise ArgumentError(str(exc)) from None


def check_crawl_url(settings: Settings, url: Any) -> str:
    """`check_url`, except that a file:// URL under ALLOWED_PATHS is accepted (as its canonical file:// URL)."""
    if isinstance(url, str) and url.strip().lower().startswith("file:"):
        try:
            return check_local_url(url, settings.allowed_paths)
        except LocalAccessError as exc:
            raise ArgumentError(str(exc)) from None
    return check_url(url)


def check_patterns(name: str, patterns: Sequence[str] | None) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]  # a single glob passed without the list around it
    if len(patterns) > MAX_PATTERNS:
        raise ArgumentError(f"{name} has {len(patterns)} patterns; the limit is {MAX_PATTERNS}")
    cleaned = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > MAX_PATTERN_CHARS:
            raise ArgumentError(f"{name} entries must be non-empty globs of at most {MAX_PATTERN_CHARS} characters")
        cleaned.append(pattern.strip())
    return tuple(cleaned)


def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id.strip()):
        raise ArgumentError("job_id must be the id a crawl tool returned (letters, digits, '-' and '_')")
    return job_id.strip()


def clean_source(source: str | None) -> str | None:
    """A source filter, or None for "all sources" (upstream treated an empty string the same way)."""
    if source is None or not source.strip():
        return None
    return source.strip()


@dataclass(frozen=True, slots=True)
class CrawlSpec:
    """What a crawl job runs; stored as the job's options so the job can be re-run after a restart."""

    url: str
    max_depth: int
    max_pages: int
    max_concurrent: int
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    chunk_size: int | None = None
    kind: str = "smart"

    @classmethod
    def from_arguments(
        cls,
        settings: Settings,
        *,
        url: Any,
        max_depth: Any,
        max_pages: Any = None,
        max_concurrent: Any = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        chunk_size: Any = None,
        kind: str = "smart",
    ) -> CrawlSpec:
        """Validate tool arguments; page and concurrency limits are capped at MAX_PAGES and MAX_CONCURRENT."""
        pages = settings.max_pages if max_pages is None else check_int("max_pages", max_pages, *PAGES_RANGE)
        concurrent = (
            settings.max_concurrent
            if max_concurrent is None
            else check_int("max_concurrent", max_concurrent, *CONCURRENCY_RANGE)
        )
        return cls(
            url=check_crawl_url(settings, url),
            max_depth=check_int("max_depth", max_depth, *DEPTH_RANGE),
            max_pages=min(pages, settings.max_pages),
            max_concurrent=min(concurrent, settings.max_concurrent),
            include=check_patterns("include", include),
            exclude=check_patterns("exclude", exclude),
            chunk_size=None if chunk_size is None else check_int("chunk_size", chunk_size, *CHUNK_SIZE_RANGE),
            kind=kind,
        )

    @classmethod
    def from_options(cls, url: str, options: Mapping[str, Any], settings: Settings) -> CrawlSpec:
        """Rebuild a stored job's spec; options missing from older records fall back to the settings."""
        return cls.from_arguments(
            settings,
            url=url,
            max_depth=options.get("max_depth", settings.max_depth),
            max_pages=options.get("max_pages"),
            max_concurrent=options.get("max_concurrent"),
            include=options.get("include") or None,
            exclude=options.get("exclude") or None,
            chunk_size=options.get("chunk_size"),
            kind=str(options.get("kind", "smart")),
        )

    def to_options(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "max_depth": self.max_depth,
            "max_pages": self.max_pages,
            "max_concurrent": self.max_concurrent,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "chunk_size": self.chunk_size,
        }

    def request(self) -> CrawlRequest:
        return CrawlRequest(
            url=self.url,
            max_depth=self.max_depth,
            max_pages=self.max_pages,
            max_concurrent=self.max_concurrent,
            include=self.include,
            exclude=self.exclude,
        )
