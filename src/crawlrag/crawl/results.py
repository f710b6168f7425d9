"""The records a crawl is asked with and answers with (besides `crawlrag.models.Page`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crawlrag.crawl.urls import CrawlInputError
from crawlrag.pipeline.bounds import CONCURRENCY_RANGE, DEPTH_RANGE, PAGES_RANGE


@dataclass(frozen=True)
class CrawlRequest:
    """What to crawl. `max_depth` 0 fetches only `url`; include/exclude are globs (see `urls.matches_any`)."""

    url: str
    max_depth: int = 3
    max_pages: int = 1000
    max_concurrent: int = 10
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, value, (low, high) in (
            ("max_depth", self.max_depth, DEPTH_RANGE),
            ("max_pages", self.max_pages, PAGES_RANGE),
            ("max_concurrent", self.max_concurrent, CONCURRENCY_RANGE),
        ):
            if not low <= value <= high:
                raise CrawlInputError(f"{name} must be between {low} and {high}, got {value}")
        # Accept lists from callers (JSON tool arguments) but keep the dataclass hashable and immutable.
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))


@dataclass(frozen=True)
class PageFailure:
    """A page the crawler tried and could not store; `reason` is short and human-readable ("HTTP 404").

    `status` is the HTTP status when the server answered with an error: a refresh removes pages that answer 404
    or 410, never ones that failed otherwise (time-outs, 5xx, network errors)."""

    url: str
    reason: str
    status: int | None = field(default=None, compare=False)  # detail: a failure is its URL and reason


@dataclass(frozen=True)
class PageSkipped:
    """A page deliberately not stored ("not modified" carries the URL after redirects, the stored page's URL).

    Reasons: "robots.txt", "excluded", "not modified", "unsupported content type: <type>", "different site",
    "duplicate of <url>, already crawled", "redirects to another site: <url>".
    """

    url: str
    reason: str


@dataclass(frozen=True)
class CrawlProgress:
    """Counts so far: `discovered` distinct URLs, `fetched` pages yielded, `queued` waiting or in flight."""

    discovered: int
    fetched: int
    failed: int
    skipped: int
    queued: int
