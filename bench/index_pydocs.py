"""Indexing benchmark: crawl and index the Python 3.11 HTML docs (530 pages) from index.html into a fresh store.

    python bench/index_pydocs.py [--docs DIR] [--max-pages N] [--recrawl] [--json]

Prints pages, chunks, chunks embedded, total seconds, embedded chunks/s, pages/s, peak RSS, DB size and the
time split. `--recrawl` indexes a second time into the same store (unchanged pages must be skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_settings, index_site, serve_directory

from crawlrag.context import AppContext
from crawlrag.indexer import IndexReport

DOCS = Path("/usr/share/doc/python3.11/html")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarize(label: str, report: IndexReport, db: Path) -> dict[str, Any]:
    p = report.progress
    size = sum(f.stat().st_size for f in db.parent.glob(db.name + "*"))
    total = report.seconds
    timings = dict(report.timings)
    return {
        "run": label,
        "pages": p.stored + p.unchanged,
        "pages_stored": p.stored,
        "pages_failed": p.failed,
        "chunks": p.chunks_stored,
        "chunks_embedded": p.chunks_embedded,
        "total_s": round(total, 1),
        "embed_chunks_per_s": round(p.chunks_embedded / timings["embed"], 1) if timings.get("embed") else 0.0,
        "pages_per_s": round((p.stored + p.unchanged) / total, 2) if total else 0.0,
        "peak_rss_mb": round(peak_rss_mb()),
        "db_mb": round(size / 2**20, 1),
        "split_s": {name: round(value, 1) for name, value in timings.items()},
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'run':<9} {'pages':>6} {'chunks':>7} {'embedded':>8} {'total s':>8} {'emb/s':>7} {'pages/s':>8} "
        f"{'RSS MB':>7} {'DB MB':>6}  time split (s; crawl = waiting on fetch + markdown)"
    )
    for r in rows:
        split = ", ".join(f"{k} {v}" for k, v in r["split_s"].items())
        print(
            f"{r['run']:<9} {r['pages']:>6} {r['chunks']:>7} {r['chunks_embedded']:>8} {r['total_s']:>8} "
            f"{r['embed_chunks_per_s']:>7} {r['pages_per_s']:>8} {r['peak_rss_mb']:>7} {r['db_mb']:>6}  {split}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--max-pages", type=int, default=10_000)
    parser.add_argument("--recrawl", action="store_true", help="index a second time into the same store")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not (args.docs / "index.html").exists():
        raise SystemExit(f"{args.docs}/index.html not found: install the Debian package python3.11-doc")

    rows = []
    with tempfile.TemporaryDirectory() as tmp, serve_directory(args.docs) as base:
        db = Path(tmp) / "index.db"
        context = AppContext.create(bench_settings(db))
        try:
            started = time.perf_counter()
            context.embedder.load()
            print(f"model loaded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            for label in ("first", "recrawl") if args.recrawl else ("first",):
                report = asyncio.run(index_site(context, base + "index.html", max_pages=args.max_pages))
                rows.append(summarize(label, report, db))
        finally:
            context.close()
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else {"runs": rows}, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
