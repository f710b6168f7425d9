"""One validated set of crawl options, used by the CLI, the MCP tools and stored crawl jobs.

Defaults come from the settings (MAX_DEPTH, MAX_PAGES, MAX_CONCURRENT, CHUNK_SIZE); a caller may ask for less
pages or concurrency than the settings allow, never more. Per-crawl overrides (chunk size, force) live here, so
nothing downstream copies `Settings` to change one value.

Every crawl files its pages under one version of its site (`crawlrag.sources.versions`): the one asked for, else the one
the start URL's path names (`/3.11/`, `/v2/`, `/en/stable/`), else `latest`. A version read from the start URL
also keeps the crawl under that version's path (`/docs/1.0/...`) unless include patterns are given, so a version
switcher's links do not file another version's pages under this one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawlrag.config import Settings
from crawlrag.crawl.results import CrawlRequest
from crawlrag.crawl.urls import MAX_URL_CHARS, CrawlInputError, normalize_url
from crawlrag.local import check_local_url, is_local_target, resolve_target
from crawlrag.pipeline.bounds import (
    CHUNK_SIZE_RANGE,
    CONCURRENCY_RANGE,
    DEPTH_RANGE,
    PAGES_RANGE,
    REFRESH_HOURS_RANGE,
)
from crawlrag.sources.versions import LATEST, VersionError, check_version, detect_version

# The kind of a refresh job: its `source_id` names the source whose recorded crawls it runs again.
REFRESH_KIND = "refresh"

MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 500


def check_int(name: str, value: Any, bounds: tuple[int, int]) -> int:
    low, high = bounds
    # bool is an int subclass; `true` for a page count is a caller mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise CrawlInputError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise CrawlInputError(f"{name} must be between {low} and {high}, got {value}")
    return value


def check_hours(name: str, value: Any) -> float:
    low, high = REFRESH_HOURS_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        raise CrawlInputError(f"{name} must be a number of hours, got {value!r}")
    if not low <= value <= high:
        raise CrawlInputError(f"{name} must be between {low:g} and {high:g} hours (0: never), got {value}")
    return float(value)


def check_url(url: Any) -> str:
    """The normalised http(s) URL, or CrawlInputError saying why it cannot be crawled."""
    if not isinstance(url, str) or not url.strip():
        raise CrawlInputError("url must be a non-empty http:// or https:// URL")
    if len(url) > MAX_URL_CHARS:
        raise CrawlInputError(f"url is {len(url)} characters long; the limit is {MAX_URL_CHARS}")
    return normalize_url(url)


def check_target(settings: Settings, url: Any, *, any_local: bool = False) -> str:
    """`check_url`, except for local documents under ALLOWED_PATHS: `file://` URLs always (as their canonical URL),
    and with `any_local` (the CLI) also paths and `git+` URLs. LocalAccessError names ALLOWED_PATHS."""
    if isinstance(url, str) and is_local_target(url):
        if url.strip().lower().startswith("file:"):
            return check_local_url(url, settings.allowed_paths)
        if any_local:
            return resolve_target(url, settings.allowed_paths).url
    return check_url(url)


def check_patterns(name: str, patterns: Sequence[str] | str | None) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]  # a single glob passed without the list around it
    if len(patterns) > MAX_PATTERNS:
        raise CrawlInputError(f"{name} has {len(patterns)} patterns; the limit is {MAX_PATTERNS}")
    cleaned = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > MAX_PATTERN_CHARS:
            raise CrawlInputError(f"{name} entries must be non-empty globs of at most {MAX_PATTERN_CHARS} characters")
        cleaned.append(pattern.strip())
    return tuple(cleaned)


def _glob_escape(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[]" else char for char in text)


def crawl_version(target: str, version: Any) -> tuple[str, tuple[str, ...]]:
    """The version a crawl of `target` files its pages under, and the include globs that keep it there (none
    when the start URL names no version)."""
    if version is not None:
        try:
            version = check_version(version)
        except VersionError as exc:
            raise CrawlInputError(str(exc)) from None
    detected = None if is_local_target(target) else detect_version(target)
    if detected is None or (version is not None and version != detected.version):
        return version or LATEST, ()
    path = _glob_escape(urlsplit(detected.prefix).path.rstrip("/"))
    return detected.version, (path, f"{path}/*")


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    """What one crawl job runs; stored as the job's options so the job can be re-run after a restart."""

    url: str
    max_depth: int
    max_pages: int
    max_concurrent: int
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    chunk_size: int | None = None  # None: CHUNK_SIZE
    force: bool = False  # re-process pages even when they and the index settings are unchanged
    kind: str = "smart"
    # Local targets only (crawlrag.local): the source id to file pages under, and the git ref to read.
    # For a refresh job (kind REFRESH_KIND): the source to refresh.
    source_id: str | None = None
    ref: str | None = None
    version: str = LATEST  # the site's version the pages are filed under (crawlrag.sources.versions.source_key)
    # Hours between scheduled refreshes of the crawled source (0: never; None: keep the source's, or
    # REFRESH_INTERVAL_HOURS).
    refresh_interval_hours: float | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        url: Any,
        max_depth: Any = None,
        max_pages: Any = None,
        max_concurrent: Any = None,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        chunk_size: Any = None,
        force: Any = False,
        kind: str = "smart",
        source_id: str | None = None,
        ref: str | None = None,
        version: Any = None,
        any_local: bool = False,
        refresh_interval_hours: Any = None,
    ) -> CrawlOptions:
        """Validate; None means the setting's value, and pages and concurrency are capped by the settings."""
        if not isinstance(force, bool):
            raise CrawlInputError(f"force must be true or false, got {force!r}")
        depth = settings.max_depth if max_depth is None else check_int("max_depth", max_depth, DEPTH_RANGE)
        pages = settings.max_pages if max_pages is None else check_int("max_pages", max_pages, PAGES_RANGE)
        concurrent = (
            settings.max_concurrent
            if max_concurrent is None
            else check_int("max_concurrent", max_concurrent, CONCURRENCY_RANGE)
        )
        target = check_target(settings, url, any_local=any_local)
        if (ref or (source_id and kind != REFRESH_KIND)) and not is_local_target(target):
            raise CrawlInputError("--source-id and --ref apply to local folders, files and git repositories only")
        if source_id and kind != REFRESH_KIND and "@" in source_id:
            raise CrawlInputError("a source id may not contain '@' (it separates a source from its version)")
        chosen_version, version_scope = crawl_version(target, version)
        return cls(
            url=target,
            max_depth=depth,
            max_pages=min(pages, settings.max_pages),
            max_concurrent=min(concurrent, settings.max_concurrent),
            include=check_patterns("include", include) or version_scope,
            exclude=check_patterns("exclude", exclude),
            chunk_size=None if chunk_size is None else check_int("chunk_size", chunk_size, CHUNK_SIZE_RANGE),
            force=force,
            kind=kind,
            source_id=source_id or None,
            ref=ref or None,
            version=chosen_version,
            refresh_interval_hours=(
                None
                if refresh_interval_hours is None
                else check_hours("refresh_interval_hours", refresh_interval_hours)
            ),
        )

    @classmethod
    def from_stored(cls, url: str, options: Mapping[str, Any], settings: Settings) -> CrawlOptions:
        """Rebuild a stored job's options; options missing from older records fall back to the settings."""
        return cls.build(
            settings,
            url=url,
            max_depth=options.get("max_depth"),
            max_pages=options.get("max_pages"),
            max_concurrent=options.get("max_concurrent"),
            include=options.get("include") or None,
            exclude=options.get("exclude") or None,
            chunk_size=options.get("chunk_size"),
            force=bool(options.get("force", False)),
            kind=str(options.get("kind", "smart")),
            source_id=options.get("source_id"),
            ref=options.get("ref"),
            # Jobs recorded before versions filed their pages under `latest`, whatever their URL.
            version=options.get("version", LATEST),
            refresh_interval_hours=options.get("refresh_interval_hours"),
            any_local=True,  # what a job was started with was checked then; ALLOWED_PATHS is checked again
        )

    @classmethod
    def from_request(cls, request: CrawlRequest) -> CrawlOptions:
        """Options for a crawler request built by hand (tests, benchmarks): no overrides."""
        return cls(
            url=request.url,
            max_depth=request.max_depth,
            max_pages=request.max_pages,
            max_concurrent=request.max_concurrent,
            include=request.include,
            exclude=request.exclude,
        )

    def to_stored(self) -> dict[str, Any]:
        return (
            {
                "kind": self.kind,
                "max_depth": self.max_depth,
                "max_pages": self.max_pages,
                "max_concurrent": self.max_concurrent,
                "include": list(self.include),
                "exclude": list(self.exclude),
                "chunk_size": self.chunk_size,
                "force": self.force,
                "version": self.version,
            }
            | ({"source_id": self.source_id, "ref": self.ref} if self.source_id or self.ref else {})
            | (
                {"refresh_interval_hours": self.refresh_interval_hours}
                if self.refresh_interval_hours is not None
                else {}
            )
        )

    def request(self) -> CrawlRequest:
        return CrawlRequest(
            url=self.url,
            max_depth=self.max_depth,
            max_pages=self.max_pages,
            max_concurrent=self.max_concurrent,
            include=self.include,
            exclude=self.exclude,
        )

    def chunk_size_for(self, settings: Settings) -> int:
        return settings.chunk_size if self.chunk_size is None else self.chunk_size
