"""Helpers shared by the crawl tests (imported as a plain module; tests/crawl is on sys.path)."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sitegen import SiteInfo

from crawlrag.crawl import Crawler, CrawlRequest, PageFailure, PageSkipped
from crawlrag.models import Page


@dataclass
class ServedSite:
    base_url: str
    info: SiteInfo
    hits: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return self.base_url + path

    def path(self, url: str) -> str:
        return url.removeprefix(self.base_url)


@dataclass
class Outcome:
    """A finished crawl, keyed by site path: pages, failures and skips with their reasons."""

    pages: dict[str, Page]
    failures: dict[str, str]
    skipped: dict[str, str]
    order: list[str]  # paths in the order results arrived

    @classmethod
    def of(cls, site: ServedSite, results: Iterable[Page | PageFailure | PageSkipped]) -> Outcome:
        outcome = cls(pages={}, failures={}, skipped={}, order=[])
        for result in results:
            path = site.path(result.url)
            assert path not in outcome.order, f"two results for {path}"
            outcome.order.append(path)
            if isinstance(result, Page):
                outcome.pages[path] = result
            elif isinstance(result, PageFailure):
                outcome.failures[path] = result.reason
            else:
                outcome.skipped[path] = result.reason
        return outcome


async def crawl_all(crawler: Crawler, request: CrawlRequest, **kwargs: Any) -> list[Page | PageFailure | PageSkipped]:
    return [result async for result in crawler.crawl(request, **kwargs)]


def crawlrag_chromium_processes() -> list[psutil.Process]:
    """Chromium processes started by crawlrag, recognised by their temporary profile directory."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = process.info.get("cmdline") or []
        except psutil.Error:
            continue
        if any("crawlrag-chromium-" in part for part in cmdline):
            found.append(process)
    return found


def chromium_profile_dirs() -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob("crawlrag-chromium-*"))
