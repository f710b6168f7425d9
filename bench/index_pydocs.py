"""Indexing benchmark: crawl and index the Python 3.11 HTML docs (530 pages) from index.html into a fresh store.

    python bench/index_pydocs.py [--docs DIR] [--max-pages N] [--recrawl] [--baseline] [--queries FILE] [--batches]
                                 [--json]

Prints pages, chunks, chunks embedded, total seconds, embedded chunks/s, pages/s, HTML-to-markdown pages/s,
peak RSS, DB size and the time split. `--recrawl` indexes a second time into the same store (unchanged pages
must be skipped), then runs a `refresh` of the source (as `crawlrag refresh`: conditional requests, nothing
removed from the unchanged docs).
`--baseline` repeats the run with float32 embeddings; with `--queries` (the retrieval benchmark's JSONL) each
store is also searched (hybrid) so quality can be compared (MRR@10).
`--batches` records every embedding call (texts, real tokens, tokens padded to the call's longest text, seconds):
where the embedding time goes. Counting costs a little CPU, so leave it off for the timing that counts.
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
from _common import (
    bench_settings,
    bert_gflop,
    ceiling_line,
    ceiling_share,
    index_site,
    matmul_gflops,
    refresh_source,
    serve_directory,
)
from eval_retrieval import evaluate, load_queries

from crawlrag.context import AppContext
from crawlrag.embeddings import Embedder
from crawlrag.pipeline.indexer import IndexReport
from crawlrag.tokens import TokenCounter

DOCS = Path("/usr/share/doc/python3.11/html")


class BatchRecorder:
    """Wraps the embedder and records each `embed_documents` call: (texts, tokens, padded tokens, seconds).

    Counted with the model's tokenizer plus [CLS]/[SEP], capped at its window; a call is assumed to be one
    forward pass padded to its longest text (true for the indexer's calls of at most EMBEDDING_BATCH_SIZE texts).
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[tuple[int, int, int, float]] = []
        self._counter: TokenCounter | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed_documents(self, texts: Any) -> Any:
        if self._counter is None:
            self._counter = self.inner.token_counter()
        window = self.inner.max_input_tokens or 10**9
        counts = [min(n + 2, window) for n in self._counter.counts(texts)]
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self.calls.append(
            (len(counts), sum(counts), len(counts) * max(counts, default=0), time.perf_counter() - started)
        )
        return vectors

    def summary(self) -> dict[str, Any]:
        texts, tokens, padded, seconds = (sum(call[i] for call in self.calls) for i in range(4))
        return {
            "calls": len(self.calls),
            "texts_per_call": round(texts / len(self.calls), 1) if self.calls else 0,
            "tokens": tokens,
            "padded_tokens": padded,
            "padding_ratio": round(padded / tokens, 3) if tokens else 0,
            "padded_tokens_per_s": round(padded / seconds) if seconds else 0,
            "embed_call_s": round(seconds, 1),
        }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarize(label: str, report: IndexReport, db: Path, precision: str) -> dict[str, Any]:
    p = report.progress
    size = sum(f.stat().st_size for f in db.parent.glob(db.name + "*"))
    timings = dict(report.timings)
    # The pipeline overlaps stages, so the part of the wall time not spent embedding, chunking or storing is
    # time the embedder waited on the crawler (fetch + markdown): that is the "idle" share.
    busy = sum(timings.get(name, 0.0) for name in ("chunk", "embed", "store"))
    timings["idle"] = max(0.0, report.seconds - busy)
    return {
        "run": label,
        "precision": precision,
        "pages": p.stored + p.index + p.unchanged,
        "pages_stored": p.stored,
        "pages_index": p.index,
        "pages_failed": p.failed,
        "pages_added": p.added,
        "pages_changed": p.changed,
        "pages_removed": p.removed,
        "chunks": p.chunks_stored,
        "chunks_embedded": p.chunks_embedded,
        "total_s": round(report.seconds, 1),
        "embed_chunks_per_s": round(p.chunks_embedded / timings["embed"], 1) if timings.get("embed") else 0.0,
        "pages_per_s": round((p.stored + p.index + p.unchanged) / report.seconds, 2) if report.seconds else 0.0,
        # HTML-to-markdown alone (CPU time measured in the fetcher, part of "crawl"), over the pages converted.
        "convert_pages_per_s": round((p.stored + p.index) / timings["convert"], 1) if timings.get("convert") else 0.0,
        "peak_rss_mb": round(peak_rss_mb()),
        "db_mb": round(size / 2**20, 1),
        "split_s": {name: round(value, 1) for name, value in timings.items()},
    }


def mean_chunk_tokens(db: Path, context: AppContext, sample: int = 2000) -> float | None:
    """Mean tokens the embedder reads per chunk (its own counter, capped at its window), from a sample of the store."""
    import sqlite3

    try:
        with sqlite3.connect(db) as connection:
            texts = [row[0] for row in connection.execute("SELECT content FROM chunks LIMIT ?", (sample,))]
    except sqlite3.Error:
        return None
    if not texts:
        return None
    window = context.embedder.max_input_tokens or 10**9
    counts = context.embedder.token_counter().counts(texts)
    return sum(min(count + 2, window) for count in counts) / len(counts)  # + [CLS] and [SEP]


def add_ceiling_share(row: dict[str, Any], tokens: float | None, gflops: dict[str, float]) -> None:
    if tokens is None or not row["embed_chunks_per_s"]:
        return
    precision = row["precision"]
    row["tokens_per_chunk"] = round(tokens, 1)
    row["ceiling_share"] = round(ceiling_share(row["embed_chunks_per_s"], bert_gflop(tokens), gflops, precision), 3)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'run':<9} {'precision':<9} {'pages':>6} {'chunks':>7} {'embedded':>8} {'total s':>8} {'emb/s':>7} "
        f"{'ceil':>6} {'pages/s':>8} {'conv p/s':>8} {'RSS MB':>7} {'DB MB':>6} {'MRR@10':>7}  time split (s)"
    )
    for r in rows:
        split = ", ".join(f"{k} {v}" for k, v in r["split_s"].items())
        mrr = f"{r['mrr@10']:.3f}" if "mrr@10" in r else "-"
        share = f"{100 * r['ceiling_share']:.0f}%" if "ceiling_share" in r else "-"
        print(
            f"{r['run']:<9} {r['precision']:<9} {r['pages']:>6} {r['chunks']:>7} {r['chunks_embedded']:>8} "
            f"{r['total_s']:>8} {r['embed_chunks_per_s']:>7} {share:>6} {r['pages_per_s']:>8} "
            f"{r['convert_pages_per_s']:>8} "
            f"{r['peak_rss_mb']:>7} "
            f"{r['db_mb']:>6} {mrr:>7}  {split}"
        )
    print(
        "crawl = waiting on fetch + HTML-to-markdown; convert = CPU time of HTML-to-markdown (part of crawl, summed "
        "over pages converted concurrently); idle = wall time not spent chunking, embedding or storing"
    )
    print("ceil = embedding's share of the matmul ceiling (bf16's for bf16, fp32's otherwise) at the mean chunk tokens")


def run_config(label: str, precision: str, args: argparse.Namespace, base: str, tmp: Path) -> list[dict[str, Any]]:
    db = tmp / f"{label}.db"
    context = AppContext.create(bench_settings(db, embedding_precision=precision))
    rows = []
    try:
        started = time.perf_counter()
        context.embedder.load()
        status = context.embedder.status()
        chosen = str(status.get("precision") or precision)
        if status.get("backend") == "onnx":
            chosen = f"onnx-{chosen}"
        print(f"{label}: model loaded in {time.perf_counter() - started:.1f}s ({chosen})", file=sys.stderr)
        runs = ("first", "recrawl") if args.recrawl and label == "first" else (label,)
        for run in runs:
            recorder = BatchRecorder(context.embedder) if args.batches else None
            report = asyncio.run(index_site(context, base + "index.html", max_pages=args.max_pages, embedder=recorder))
            rows.append(summarize(run, report, db, chosen))
            status = context.embedder.status()  # how much of the run the worker processes embedded
            rows[-1]["embedding_workers"] = {k: status.get(k) for k in ("workers", "workers_texts", "workers_error")}
            if recorder is not None:
                rows[-1]["batches"] = recorder.summary()
                print(f"{run}: embedding calls {rows[-1]['batches']}", file=sys.stderr)
        if args.recrawl and label == "first":
            (source_id,) = report.source_ids
            rows.append(summarize("refresh", asyncio.run(refresh_source(context, source_id)), db, chosen))
        tokens = mean_chunk_tokens(db, context)
        for row in rows:
            add_ceiling_share(row, tokens, args.gflops)
        if args.queries:
            quality = evaluate(context, ["hybrid"], load_queries(args.queries))["hybrid"]
            rows[0]["mrr@10"] = round(quality["mrr@10"], 4)
            rows[0]["recall@5"] = round(quality["recall@5"], 4)
    finally:
        context.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--max-pages", type=int, default=10_000)
    parser.add_argument(
        "--recrawl", action="store_true", help="index a second time into the same store, then refresh it"
    )
    parser.add_argument("--baseline", action="store_true", help="also run with float32 embeddings")
    parser.add_argument("--queries", type=Path, help="JSONL queries: compare MRR@10 of the stores")
    parser.add_argument("--batches", action="store_true", help="record tokens and padding of each embedding call")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not (args.docs / "index.html").exists():
        raise SystemExit(f"{args.docs}/index.html not found: install the Debian package python3.11-doc")

    args.gflops = matmul_gflops()
    print(ceiling_line(args.gflops), file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, serve_directory(args.docs) as base:
        rows += run_config("first", "auto", args, base, Path(tmp))
        if args.baseline:
            rows += run_config("baseline", "float32", args, base, Path(tmp))
    hardware = {"matmul_gflops": {key: round(value, 1) for key, value in args.gflops.items()}}
    if args.json:
        print(json.dumps(rows[0] | {"runs": rows, "hardware": hardware}, indent=2))
    else:
        print(ceiling_line(args.gflops))
        print_table(rows)
        for row in rows:
            if "batches" in row:
                print(f"{row['run']}: embedding calls {row['batches']}")


if __name__ == "__main__":
    main()
