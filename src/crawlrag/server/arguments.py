"""Checking tool arguments before anything runs or is stored, with messages that say what is accepted."""

from __future__ import annotations

import re
from typing import Any

from crawlrag.crawl.urls import CrawlInputError

# Crawl options (URL, depth, pages, patterns) are checked by crawlrag.pipeline.options.CrawlOptions.
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
    """The normalised http(s) URL of a page argument, or ArgumentError saying why it is not one."""
    from crawlrag.pipeline.options import check_url as check_crawl_url

    try:
        return check_crawl_url(url)
    except CrawlInputError as exc:  # the message names the URL and what is supported
        raise ArgumentError(str(exc)) from None


def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id.strip()):
        raise ArgumentError("job_id must be the id a crawl tool returned (letters, digits, '-' and '_')")
    return job_id.strip()


def clean_source(source: str | None) -> str | None:
    """A source filter, or None for "all sources" (upstream treated an empty string the same way)."""
    if source is None or not source.strip():
        return None
    return source.strip()
