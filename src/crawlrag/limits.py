"""Bounds of search and answer options, defined once for the settings, the CLI and the MCP tool schemas.

Crawl bounds (depth, pages, concurrency, chunk size) live with the crawl (`crawlrag.crawl.results`); the bounds
here are the ones answers are shaped by.
"""

from __future__ import annotations

# `max_tokens` of perform_rag_query / search_code_examples / fetch_page, and the MAX_RESULT_TOKENS setting.
MIN_RESULT_TOKENS = 100
MAX_RESULT_TOKENS = 100_000
DEFAULT_RESULT_TOKENS = 4000
# list_crawl_jobs' `limit`.
JOB_LIST_RANGE = (1, 200)
# A source id is a host name (optionally with a port); longer text is never a known source.
MAX_SOURCE_CHARS = 300
# fetch_page's `section`: a heading's text.
MAX_SECTION_CHARS = 500
