"""Documentation that does not live on a web server: folders, git repositories, archives, PDFs, OpenAPI specs.

Nothing local is readable unless its resolved path is under one of the ALLOWED_PATHS roots (empty by default).
Usage::

    if is_local_target(url):
        async for result in crawl_local(url, settings, request, LocalOptions(source_id="docs", ref="v2")):
            ...  # Page | PageFailure | PageSkipped, exactly like Crawler.crawl

See `crawlrag.local.crawl` for the URLs pages get, and docs/local-sources.md.
"""

from __future__ import annotations

from crawlrag.local.crawl import LocalCrawl, LocalResult, crawl_local
from crawlrag.local.policy import LocalAccessError
from crawlrag.local.target import LocalOptions, LocalTarget, is_local_target, resolve_target

__all__ = [
    "LocalAccessError",
    "LocalCrawl",
    "LocalOptions",
    "LocalResult",
    "LocalTarget",
    "check_local_url",
    "crawl_local",
    "is_local_target",
    "resolve_target",
]


def check_local_url(url: str, allowed_paths: list[str]) -> str:
    """For tool arguments: a `file://` URL under ALLOWED_PATHS, returned as the canonical URL of what it names.

    Only `file://` URLs are accepted here (not bare paths, not git URLs): an agent names local documents as
    URLs, and cloning repositories is left to the `crawlrag crawl` command. Raises LocalAccessError.
    """
    if not url.strip().lower().startswith("file:"):
        raise LocalAccessError(f"Cannot crawl {url!r}: tools accept local documents only as file:// URLs")
    return resolve_target(url, allowed_paths).url
