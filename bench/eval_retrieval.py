"""Retrieval benchmark: index a docs folder once, run a query set, report Recall@k and MRR@10 per mode.

    python bench/eval_retrieval.py --docs /usr/share/doc/python3.11/html --queries ../shared/eval/dev-pydocs.jsonl
    python bench/eval_retrieval.py --set git        # a set of bench/devsets/sets.json (see its README)

Modes: vector, keyword, hybrid, hybrid+rerank (when USE_RERANKING=true and a reranker loads), and upstream (the
Crawl4AI RAG server's algorithm: top-k chunks by vector similarity, no fusion, no per-page limit). A result counts
as relevant when its page path (relative to the docs root) is in the query's `relevant` list.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_settings, index_site, serve_directory

from crawlrag.config import Settings
from crawlrag.context import AppContext

DEVSETS = Path(__file__).resolve().parent / "devsets" / "sets.json"
ALL_MODES = ("vector", "keyword", "hybrid", "hybrid+rerank", "upstream")
K = 10


@dataclass(frozen=True)
class Query:
    q: str
    relevant: frozenset[str]
    kind: str


def load_queries(path: Path) -> list[Query]:
    queries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            queries.append(Query(row["q"], frozenset(p.lstrip("/") for p in row["relevant"]), row.get("kind", "")))
    return queries


def page_path(url: str, root_path: str) -> str:
    """A result URL's path relative to the served docs root."""
    path = urlparse(url).path
    return path[len(root_path) :] if path.startswith(root_path) else path.lstrip("/")


def first_relevant_rank(urls: Sequence[str], relevant: frozenset[str], root_path: str = "/") -> int | None:
    for rank, url in enumerate(urls, start=1):
        if page_path(url, root_path) in relevant:
            return rank
    return None


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """Recall@1/5/10 (share of queries with a relevant page in the top k) and MRR@10."""
    n = len(ranks) or 1
    found = [r for r in ranks if r is not None]
    return {
        "recall@1": sum(r <= 1 for r in found) / n,
        "recall@5": sum(r <= 5 for r in found) / n,
        "recall@10": sum(r <= 10 for r in found) / n,
        "mrr@10": sum(1 / r for r in found if r <= 10) / n,
    }


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_mode(context: AppContext, mode: str, queries: Sequence[Query]) -> tuple[list[int | None], list[float]]:
    ranks, latencies = [], []
    for query in queries:
        started = time.perf_counter()
        if mode == "upstream":
            vector = context.embedder.embed_query(query.q)
            urls = [hit.url for hit in context.store.vector_search(vector, K)]
        else:
            search_mode = "hybrid" if mode == "hybrid+rerank" else mode
            response = await context.search.search(
                query.q,
                match_count=K,
                mode=search_mode,
                rerank=mode == "hybrid+rerank",  # type: ignore[arg-type]
            )
            if mode == "hybrid+rerank" and not response.reranking_applied:
                raise RuntimeError(f"reranking did not run: {response.reranking_reason}")
            urls = [hit.url for hit in response.results]
        latencies.append((time.perf_counter() - started) * 1000)
        ranks.append(first_relevant_rank(urls, query.relevant))
    return ranks, latencies


def evaluate(context: AppContext, modes: Sequence[str], queries: Sequence[Query]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    kinds = sorted({q.kind for q in queries})
    for mode in modes:
        ranks, latencies = asyncio.run(run_mode(context, mode, queries))
        entry: dict[str, Any] = metrics(ranks)
        entry["p50_ms"] = round(statistics.median(latencies), 2) if latencies else 0.0
        entry["p95_ms"] = round(percentile(latencies, 0.95), 2)
        entry["by_kind"] = {
            kind: metrics([r for r, q in zip(ranks, queries, strict=True) if q.kind == kind]) for kind in kinds
        }
        results[mode] = entry
    return results


def default_db(docs: Path, settings: Settings) -> Path:
    """A cache file per corpus and indexing configuration, so a changed setting re-indexes."""
    signature = json.dumps(
        [
            str(docs.resolve()),
            settings.chunk_size,
            settings.max_link_density,
            settings.embedding_model,
            settings.use_contextual_embeddings,
            settings.use_agentic_rag,
        ],
    )
    digest = hashlib.sha256(signature.encode()).hexdigest()[:12]
    return Path(__file__).resolve().parent / ".cache" / f"retrieval-{digest}.db"


def print_table(report: dict[str, Any]) -> None:
    kinds = sorted({kind for entry in report["modes"].values() for kind in entry["by_kind"]})
    header = (
        f"{'mode':<14} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} "
        + " ".join(f"{'MRR ' + kind:>14}" for kind in kinds)
        + f" {'p50 ms':>8} {'p95 ms':>8}"
    )
    print(f"{report['queries']} queries, {report['pages_indexed']} pages indexed")
    print(header)
    for mode, e in report["modes"].items():
        per_kind = " ".join(f"{e['by_kind'][kind]['mrr@10']:>14.3f}" for kind in kinds)
        print(
            f"{mode:<14} {e['recall@1']:>6.3f} {e['recall@5']:>6.3f} {e['recall@10']:>6.3f} {e['mrr@10']:>7.3f} "
            f"{per_kind} {e['p50_ms']:>8.1f} {e['p95_ms']:>8.1f}"
        )


def _set_file(name: str) -> Path:
    """A set's query file: in bench/devsets/, or (the shared set) under a `shared/` folder above the repo."""
    here = DEVSETS.parent / name
    if here.exists() or not name.startswith("shared/"):
        return here
    for folder in DEVSETS.parents:
        if (folder / name).exists():
            return folder / name
    return here


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="devset", help="a dev set named in bench/devsets/sets.json")
    parser.add_argument("--docs", type=Path, help="folder of HTML docs to serve and index")
    parser.add_argument("--queries", type=Path, help="JSONL: {q, relevant, kind}")
    parser.add_argument("--db", type=Path, help="SQLite file to index into / reuse (default: cached per corpus)")
    parser.add_argument("--start", default="index.html", help="start page, relative to --docs")
    parser.add_argument("--modes", default=None, help=f"comma list of {', '.join(ALL_MODES)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.devset:
        sets = json.loads(DEVSETS.read_text(encoding="utf-8"))
        if args.devset not in sets:
            parser.error(f"unknown set {args.devset!r}; known: {', '.join(sorted(sets))}")
        entry = sets[args.devset]
        args.docs = args.docs or Path(entry["docs"])
        args.queries = args.queries or _set_file(entry["queries"])
        args.start = entry.get("start", args.start)
    if args.docs is None or args.queries is None:
        parser.error("give --set, or both --docs and --queries")

    probe = bench_settings(Path("unused.db"))
    db = args.db or default_db(args.docs, probe)
    settings = bench_settings(db)
    modes = (
        args.modes.split(",")
        if args.modes
        else [m for m in ALL_MODES if m != "hybrid+rerank" or settings.use_reranking]
    )
    unknown = set(modes) - set(ALL_MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if "hybrid+rerank" in modes:
        settings = settings.model_copy(update={"use_reranking": True})
    queries = load_queries(args.queries)

    context = AppContext.create(settings)
    try:
        if not context.store.list_sources():
            started = time.perf_counter()
            with serve_directory(args.docs) as base:
                report = asyncio.run(index_site(context, base + args.start))
            print(
                f"indexed {report.progress.stored} pages in {time.perf_counter() - started:.0f}s into {db}",
                file=sys.stderr,
            )
        if context.reranker is not None:
            context.reranker.start()
            if not asyncio.run(context.reranker.wait_ready(600)):
                raise SystemExit(f"reranker did not load: {context.reranker.status().get('reason')}")
        pages = sum(source.pages for source in context.store.list_sources())
        output = {"modes": evaluate(context, modes, queries), "queries": len(queries), "pages_indexed": pages}
    finally:
        context.close()
    if args.json:
        print(json.dumps(output, indent=2))
    else:
        print_table(output)
    return output


if __name__ == "__main__":
    main()
