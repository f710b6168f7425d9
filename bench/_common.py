"""Shared by the benchmarks: serve a folder on 127.0.0.1 and index a site into a store."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.pipeline.indexer import Indexer, IndexReport


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve `root` over HTTP on a free loopback port; yields the base URL (ending in '/')."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def index_site(context: AppContext, url: str, *, max_pages: int = 10_000, max_depth: int = 20) -> IndexReport:
    request = CrawlRequest(
        url=url, max_depth=max_depth, max_pages=max_pages, max_concurrent=context.settings.max_concurrent
    )
    async with Crawler(context.settings) as crawler:
        return await Indexer(context.settings, context.store, context.embedder, crawler).run(request)


def bench_settings(db_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": f"sqlite:///{db_path}", "allow_private_network": True}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
