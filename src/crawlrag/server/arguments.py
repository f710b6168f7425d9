"""Checking tool arguments before anything runs or is stored, with messages that say what is accepted."""

from __future__ import annotations

import re
from typing import Any

# Crawl options (URL, depth, pages, patterns) are checked by crawlrag.pipeline.options.CrawlOptions.
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ArgumentError(ValueError):
    """A tool argument is not acceptable; the message names it and says what is allowed."""


def check_int(name: str, value: Any, low: int, high: int) -> int:
    # bool is an int subclass; `true` for a page count is a caller mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ArgumentError(f"{name} must be between {low} and {high}, got {value}")
    return value


def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id.strip()):
        raise ArgumentError("job_id must be the id a crawl tool returned (letters, digits, '-' and '_')")
    return job_id.strip()


def clean_source(source: str | None) -> str | None:
    """A source filter, or None for "all sources" (upstream treated an empty string the same way)."""
    if source is None or not source.strip():
        return None
    return source.strip()
