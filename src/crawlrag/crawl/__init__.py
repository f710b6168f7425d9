"""Crawling: fetch pages, sitemaps and llms.txt files and turn them into `crawlrag.models.Page` records.

Usage::

    async with Crawler(settings) as crawler, aclosing(crawler.crawl(CrawlRequest(url))) as results:
        async for result in results:
            ...  # Page | PageFailure | PageSkipped
"""

from __future__ import annotations

import os

from crawlrag.crawl.workdir import crawl4ai_directory

# crawl4ai creates ~/.crawl4ai (and a SQLite cache in it) at import time unless this is set before the import.
if "CRAWL4_AI_BASE_DIRECTORY" not in os.environ:
    os.environ["CRAWL4_AI_BASE_DIRECTORY"] = crawl4ai_directory()

from crawlrag.crawl.crawler import Crawler, CrawlResult, ValidatorLookup
from crawlrag.crawl.guard import BlockedURLError
from crawlrag.crawl.results import CrawlProgress, CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.urls import (
    CrawlInputError,
    UrlKind,
    is_llms_txt,
    normalize_url,
    passes_filters,
    same_site,
    source_id_for,
    url_kind,
)

__all__ = [
    "BlockedURLError",
    "CrawlInputError",
    "CrawlProgress",
    "CrawlRequest",
    "CrawlResult",
    "Crawler",
    "PageFailure",
    "PageSkipped",
    "UrlKind",
    "ValidatorLookup",
    "is_llms_txt",
    "normalize_url",
    "passes_filters",
    "same_site",
    "source_id_for",
    "url_kind",
]
