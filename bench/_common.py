"""Shared by the benchmarks: serve a folder on 127.0.0.1, index a site into a store, and the machine's ceiling.

Every benchmark prints the measured matmul ceiling (`matmul_gflops`, fp32 and bf16) and each configuration's
share of it (`ceiling_share`): how far a configuration is from what the cores can do at all.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.embeddings import Embedder
from crawlrag.pipeline.indexer import Indexer, IndexReport
from crawlrag.pipeline.refresh import Refresher, refresh_options


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_handler(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` over HTTP on a free loopback port, one thread per request; yields the base URL (ending
    in '/')."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve `root` over HTTP on a free loopback port; yields the base URL (ending in '/')."""
    with serve_handler(functools.partial(_QuietHandler, directory=str(root))) as url:
        yield url


async def index_site(
    context: AppContext, url: str, *, max_pages: int = 10_000, max_depth: int = 20, embedder: Embedder | None = None
) -> IndexReport:
    request = CrawlRequest(
        url=url, max_depth=max_depth, max_pages=max_pages, max_concurrent=context.settings.max_concurrent
    )
    async with Crawler(context.settings) as crawler:
        return await Indexer(context.settings, context.store, embedder or context.embedder, crawler).run(request)


async def refresh_source(context: AppContext, source_id: str) -> IndexReport:
    """Refresh a source as `crawlrag refresh` does (its recorded crawls again, gone pages removed)."""
    options = refresh_options(context.store, context.settings, source_id)
    async with Crawler(context.settings) as crawler:
        return await Refresher(context.settings, context.store, context.embedder, crawler).run(options)


def bench_settings(db_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": f"sqlite:///{db_path}", "allow_private_network": True}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def matmul_gflops(n: int = 1024, reps: int = 20) -> dict[str, float]:
    """GFLOP/s of an n×n matmul in fp32 and bf16 (torch, all intra-op threads): the cores' practical ceiling."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        for _ in range(3):
            a @ b
        begin = time.perf_counter()
        for _ in range(reps):
            a @ b
        out[name] = 2 * n**3 * reps / (time.perf_counter() - begin) / 1e9
    return out


def best_gflops(samples: list[dict[str, float]]) -> dict[str, float]:
    """The best of several measurements: what the cores do when nothing else competes."""
    return {key: max(sample[key] for sample in samples) for key in samples[0]}


def bert_gflop(tokens: float, layers: int = 6, hidden: int = 384, ffn: int = 1536) -> float:
    """Matmul work of one BERT pass over `tokens` tokens (MiniLM-L6 by default).

    Projections and FFN, 2·T·(4H² + 2·H·F), plus attention, 4·T²·H, per layer.
    """
    return layers * (2 * tokens * (4 * hidden**2 + 2 * hidden * ffn) + 4 * tokens**2 * hidden) / 1e9


def ceiling_rate(gflops: dict[str, float], precision: str) -> float:
    """The matmul rate a precision is measured against: bf16's for bf16 (and fp16), else fp32's.

    int8 has no reference here (there is no int8 matmul in torch on CPU to measure): it is held against fp32,
    so its share can exceed 100%.
    """
    return gflops["bf16"] if precision in ("bfloat16", "bf16", "float16") else gflops["fp32"]


def ceiling_share(items_per_s: float, gflop_per_item: float, gflops: dict[str, float], precision: str) -> float:
    """The share of the matmul ceiling a rate of `items_per_s` uses (0.5 = half of what the cores can do)."""
    return items_per_s * gflop_per_item / ceiling_rate(gflops, precision)


def ceiling_line(gflops: dict[str, float]) -> str:
    return (
        f"matmul ceiling: fp32 {gflops['fp32']:.0f} GFLOP/s, bf16 {gflops['bf16']:.0f} GFLOP/s ({os.cpu_count()} CPUs)"
    )
