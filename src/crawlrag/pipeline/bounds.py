"""The allowed ranges of the crawl options, defined once for the settings, the tools and the CLI."""

from __future__ import annotations

DEPTH_RANGE = (0, 50)
PAGES_RANGE = (1, 1_000_000)
CONCURRENCY_RANGE = (1, 100)
CHUNK_SIZE_RANGE = (200, 20_000)
# Hours between scheduled refreshes of a source (0: never; a year at most).
REFRESH_HOURS_RANGE = (0.0, 8760.0)
