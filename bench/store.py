"""Store benchmark: SQLite (FTS5 + exact numpy vectors) against PostgreSQL + pgvector, same data, one run.

    eval "$(.ci/postgres.sh)"                             # a private PostgreSQL with pgvector
    .venv/bin/python bench/store.py                       # 10k and 100k chunks, both backends
    .venv/bin/python bench/store.py --sizes 100000 500000 --backends sqlite

Data: synthetic 384-dimension chunks of documentation-like text. Words are drawn with their real frequencies
from the docstrings of Python's standard library (so term statistics look like real docs), with dotted
identifiers (`os.scandir`) mixed in; ~50 sources of Zipf-distributed sizes, 10 chunks a page. Vectors are
clustered the way real embeddings are (a direction per source, per page, per chunk), and queries are stored
chunks plus noise, so they have true near neighbours.

Measured per backend and size (medians): insert rows/s through `write_page`, top-10 vector search without and
with a source filter (a source holding about 1% of the rows, and the largest source), keyword search, hybrid
search (vector + keyword at once in worker threads, with the candidate pool the search service uses, fused by
RRF), and recall@10 of both vector searches against exact numpy search. The machine's matmul ceiling is printed
first; exact vector search is a matrix-vector product bound by memory bandwidth, so its line gives the GB/s it
streams and its share of the fp32 ceiling (small by nature: one multiply-add per 4 bytes read). PostgreSQL gets a
VACUUM ANALYZE after the load, as autovacuum would do on its own; its database is created for the run and dropped
after it.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import statistics
import sys
import sysconfig
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio
import numpy as np
from _common import ceiling_line, matmul_gflops
from anyio.from_thread import BlockingPortal, start_blocking_portal

from crawlrag.fusion import reciprocal_rank_fusion
from crawlrag.models import Chunk, Page, content_hash
from crawlrag.search import gather
from crawlrag.store import sqlite_write
from crawlrag.store.base import PageWrite, Store
from crawlrag.store.sqlite import SQLiteStore

CHUNKS_PER_PAGE = 10
WORDS_PER_CHUNK = 120
MODEL = "bench-model"
HYBRID_POOL = 5 * 4  # match_count 5 x the search service's CANDIDATE_FACTOR


@dataclass
class Vocabulary:
    words: list[str]
    probabilities: np.ndarray
    identifiers: list[str]


def load_vocabulary(max_words: int = 8000) -> Vocabulary:
    """Words of the standard library's docstrings with their frequencies, and its dotted names."""
    counts: Counter[str] = Counter()
    identifiers: set[str] = set()
    lib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(lib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                if doc:
                    counts.update(re.findall(r"[a-z]{2,15}", doc.lower()))
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node in tree.body:
                identifiers.add(f"{path.stem}.{node.name}")
    common = counts.most_common(max_words)
    weights = np.array([count for _, count in common], dtype=np.float64)
    return Vocabulary([word for word, _ in common], weights / weights.sum(), sorted(identifiers))


@dataclass
class Corpus:
    size: int
    dim: int
    seed: int
    vocabulary: Vocabulary
    sources: list[str] = field(default_factory=list)
    page_source: list[str] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    @property
    def pages(self) -> int:
        return self.size // CHUNKS_PER_PAGE

    def key(self, row: int) -> tuple[str, int]:
        return self.url(row // CHUNKS_PER_PAGE), row % CHUNKS_PER_PAGE

    def url(self, page: int) -> str:
        return f"https://{self.page_source[page]}/page/{page}"

    def rows_of(self, source: str) -> np.ndarray:
        owners = np.repeat(np.array(self.page_source), CHUNKS_PER_PAGE)
        return np.flatnonzero(owners == source)

    def texts(self, page: int) -> tuple[str, list[str], list[str]]:
        """Title, headings and chunk texts of one page, regenerated on demand (the same on every call)."""
        rng = np.random.default_rng((self.seed, page))
        vocab = self.vocabulary
        words = rng.choice(len(vocab.words), size=(CHUNKS_PER_PAGE, WORDS_PER_CHUNK + 6), p=vocab.probabilities)
        title = " ".join(vocab.words[i] for i in words[0, -3:]).capitalize()
        headings, texts = [], []
        for row in words:
            tokens = [vocab.words[i] for i in row[:WORDS_PER_CHUNK]]
            for position in rng.integers(0, WORDS_PER_CHUNK, size=2):
                tokens[position] = vocab.identifiers[int(rng.integers(len(vocab.identifiers)))]
            sentences = [" ".join(tokens[i : i + 15]).capitalize() + "." for i in range(0, len(tokens), 15)]
            texts.append(" ".join(sentences))
            headings.append(f"# {title} > {' '.join(vocab.words[i] for i in row[-6:-3]).capitalize()}")
        return title, headings, texts

    def write(self, page: int) -> PageWrite:
        title, headings, texts = self.texts(page)
        url = self.url(page)
        chunks = [
            Chunk.build(url=url, title=title, headings=headings[i], chunk_index=i, content=text)
            for i, text in enumerate(texts)
        ]
        markdown = "\n\n".join(texts)
        rows = self.vectors[page * CHUNKS_PER_PAGE : (page + 1) * CHUNKS_PER_PAGE]
        hashes = [content_hash(f"{url}#{i}") for i in range(CHUNKS_PER_PAGE)]
        return PageWrite(
            Page(url=url, source_id=self.page_source[page], title=title, markdown=markdown), chunks, rows, hashes
        )


def _unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)).astype(np.float32)


def build_corpus(size: int, dim: int, n_sources: int, seed: int, vocabulary: Vocabulary) -> Corpus:
    rng = np.random.default_rng(seed)
    corpus = Corpus(size, dim, seed, vocabulary, sources=[f"docs{i:02d}.example.com" for i in range(n_sources)])
    shares = 1.0 / np.arange(1, n_sources + 1)
    corpus.page_source = [corpus.sources[i] for i in rng.choice(n_sources, size=corpus.pages, p=shares / shares.sum())]
    source_dirs = _unit(rng.normal(size=(n_sources, dim)))
    source_index = {source: i for i, source in enumerate(corpus.sources)}
    page_dirs = _unit(rng.normal(size=(corpus.pages, dim)))
    owners = np.array([source_index[s] for s in corpus.page_source])
    page_vectors = 0.8 * source_dirs[owners] + 0.6 * page_dirs
    chunk_noise = _unit(rng.normal(size=(corpus.pages * CHUNKS_PER_PAGE, dim)))
    corpus.vectors = _unit(np.repeat(page_vectors, CHUNKS_PER_PAGE, axis=0) + 0.7 * chunk_noise)
    return corpus


@dataclass
class Result:
    backend: str
    size: int
    insert_rows_per_s: float = 0.0
    bulk: bool = False  # loaded in bulk transactions rather than a write_page call per page
    timings: dict[str, list[float]] = field(default_factory=dict)
    recall: dict[str, list[float]] = field(default_factory=dict)

    def median_ms(self, name: str) -> float:
        return statistics.median(self.timings[name]) * 1000

    def mean_recall(self, name: str) -> float:
        return float(np.mean(self.recall[name]))


def _timed(result: Result, name: str, call: Callable[[], object]) -> object:
    started = time.perf_counter()
    value = call()
    result.timings.setdefault(name, []).append(time.perf_counter() - started)
    return value


def _hybrid(portal: BlockingPortal, store: Store, query: np.ndarray, text: str) -> object:
    """Both sides at once in worker threads, as the search service runs them, then fused."""
    rankings = portal.call(
        gather,
        [
            partial(anyio.to_thread.run_sync, store.vector_search, query, HYBRID_POOL),
            partial(anyio.to_thread.run_sync, store.keyword_search, text, HYBRID_POOL),
        ],
    )
    return reciprocal_rank_fusion(rankings, key=lambda hit: hit.chunk_id)[:5]


def run_backend(
    name: str,
    store: Store,
    corpus: Corpus,
    queries: int,
    after_load: Callable[[], None],
    portal: BlockingPortal,
    bulk: bool = False,
) -> Result:
    result = Result(name, corpus.size)
    rng = np.random.default_rng(corpus.seed + 1)
    started = time.perf_counter()
    for source in corpus.sources:
        store.ensure_source(source, MODEL, corpus.dim)
    spent = time.perf_counter() - started
    for first in range(0, corpus.pages, 500):
        # Text is generated in batches outside the clock, so only the store's own work is timed.
        writes = [corpus.write(page) for page in range(first, min(first + 500, corpus.pages))]
        started = time.perf_counter()
        if bulk and isinstance(store, SQLiteStore):
            # The store's own page SQL, 500 pages a transaction; the matrix catches up on the first search.
            with store._write() as conn:
                for write in writes:
                    sqlite_write.replace_page(conn, write, MODEL)
        else:
            for write in writes:
                store.write_page(write)
        spent += time.perf_counter() - started
    result.insert_rows_per_s = corpus.size / spent
    result.bulk = bulk and isinstance(store, SQLiteStore)
    after_load()

    counts = Counter(corpus.page_source)
    small = min(counts, key=lambda s: abs(counts[s] * CHUNKS_PER_PAGE / corpus.size - 0.01))
    large = max(counts, key=lambda s: counts[s])
    targets = {"filtered": (small, corpus.rows_of(small)), "filtered_large": (large, corpus.rows_of(large))}
    keys = [corpus.key(row) for row in range(corpus.size)]

    def exact(query: np.ndarray, rows: np.ndarray) -> list[tuple[str, int]]:
        scores = corpus.vectors[rows] @ query
        return [keys[int(rows[i])] for i in np.argsort(-scores, kind="stable")[:10]]

    all_rows = np.arange(corpus.size)
    vocab = corpus.vocabulary
    mid_words = vocab.words[50:2000]
    for round_ in range(queries + 3):  # the first rounds warm caches and are not recorded
        record = round_ >= 3
        probe = result if record else Result(name, corpus.size)
        row = int(rng.integers(corpus.size))
        query = _unit(corpus.vectors[row] + 0.6 * _unit(rng.normal(size=corpus.dim)))
        hits = _timed(probe, "vector", partial(store.vector_search, query, 10))
        assert isinstance(hits, list)
        probe.recall.setdefault("vector", []).append(
            len({(h.url, h.chunk_index) for h in hits} & set(exact(query, all_rows))) / 10
        )
        for label, (source, rows) in targets.items():
            seed_row = int(rows[rng.integers(len(rows))])
            filtered_query = _unit(corpus.vectors[seed_row] + 0.6 * _unit(rng.normal(size=corpus.dim)))
            hits = _timed(probe, label, partial(store.vector_search, filtered_query, 10, source))
            assert isinstance(hits, list)
            expected = set(exact(filtered_query, rows))
            probe.recall.setdefault(label, []).append(len({(h.url, h.chunk_index) for h in hits} & expected) / 10)
        terms = [mid_words[int(i)] for i in rng.integers(len(mid_words), size=int(rng.integers(1, 4)))]
        if rng.random() < 0.2:
            terms.append(vocab.identifiers[int(rng.integers(len(vocab.identifiers)))])
        text = " ".join(terms)
        _timed(probe, "keyword", partial(store.keyword_search, text, 10))
        _timed(probe, "hybrid", partial(_hybrid, portal, store, query, text))
    return result


@contextmanager
def sqlite_store() -> Iterator[tuple[Store, Callable[[], None]]]:
    with tempfile.TemporaryDirectory(prefix="crawlrag-bench-") as folder:
        store = SQLiteStore(Path(folder) / "bench.db")
        try:
            yield store, lambda: None
        finally:
            store.close()


@contextmanager
def postgres_store(server_url: str) -> Iterator[tuple[Store, Callable[[], None]]]:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from crawlrag.store.postgres import PostgresStore

    name = f"crawlrag_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server_url, dbname=name)
    store = PostgresStore(url)

    def vacuum() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    try:
        yield store, vacuum
    finally:
        store.close()
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def print_table(results: list[Result], file: TextIO | None = None) -> None:
    header = (
        f"{'backend':<9} {'rows':>7} {'insert/s':>9} {'vec ms':>7} {'filt ms':>8} {'filtL ms':>9} {'fts ms':>7}"
        f" {'hybrid ms':>9} {'recall':>7} {'f-recall':>8} {'fL-recall':>9}"
    )
    print(header, file=file)
    print("-" * len(header), file=file)
    for r in results:
        print(
            f"{r.backend:<9} {r.size:>7} {r.insert_rows_per_s:>8.0f}{'*' if r.bulk else ' '}"
            f" {r.median_ms('vector'):>7.2f}"
            f" {r.median_ms('filtered'):>8.2f} {r.median_ms('filtered_large'):>9.2f} {r.median_ms('keyword'):>7.2f}"
            f" {r.median_ms('hybrid'):>9.2f} {r.mean_recall('vector'):>7.3f} {r.mean_recall('filtered'):>8.3f}"
            f" {r.mean_recall('filtered_large'):>9.3f}",
            file=file,
        )
    if any(r.bulk for r in results):
        print("* loaded in bulk transactions of 500 pages (the store's page SQL), not a write_page per page", file=file)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", nargs="+", default=["10000", "100000"], help="chunk counts, space- or comma-separated (500000 too)"
    )
    parser.add_argument(
        "--bulk-above",
        type=int,
        default=100_000,
        help="SQLite sizes above this are loaded in bulk transactions, not a write_page call per page",
    )
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--queries", type=int, default=100, help="queries per measurement")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CRAWLRAG_BENCH_POSTGRES_URL") or os.environ.get("CRAWLRAG_TEST_POSTGRES_URL"),
        help="a server where this user may CREATE DATABASE (default: $CRAWLRAG_BENCH_POSTGRES_URL, "
        "then $CRAWLRAG_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgres" in backends and not args.postgres_url:
        print('no PostgreSQL URL: run `eval "$(.ci/postgres.sh)"` or pass --postgres-url', file=sys.stderr)
        return 2

    vocabulary = load_vocabulary()
    print(f"vocabulary: {len(vocabulary.words)} words, {len(vocabulary.identifiers)} identifiers", file=sys.stderr)
    results = []
    gflops = matmul_gflops()
    sizes = [int(part) for item in args.sizes for part in item.split(",") if part.strip()]
    for size in sizes:
        corpus = build_corpus(size, args.dim, args.sources, args.seed, vocabulary)
        for backend in backends:
            opener = sqlite_store() if backend == "sqlite" else postgres_store(args.postgres_url)
            started = time.perf_counter()
            with opener as (store, after_load), start_blocking_portal() as portal:
                bulk = size > args.bulk_above
                results.append(run_backend(backend, store, corpus, args.queries, after_load, portal, bulk))
            print(f"{backend} {size}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
            print_table(results[-1:], file=sys.stderr)
    print(ceiling_line(gflops))
    print_table(results)
    print()
    for r in results:
        seconds = r.median_ms("vector") / 1000
        exact = (
            f" exact vector search streams {r.size * args.dim * 4 / seconds / 1e9:.1f} GB/s,"
            f" {2 * r.size * args.dim / seconds / 1e9 / gflops['fp32']:.1%} of the fp32 matmul ceiling;"
            if r.backend == "sqlite"  # PostgreSQL walks an HNSW graph: no share of a matmul to speak of
            else ""
        )
        slower = max(r.median_ms("vector"), r.median_ms("keyword"))
        print(
            f"{r.backend} {r.size}:{exact} hybrid = {r.median_ms('hybrid') / slower:.2f}x its slower side"
            " (1.00: the sides fully overlap)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
