"""SQLite keyword ranking that scores fewer rows (rare terms first) must return what ranking every match does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from store_helpers import DIM, MODEL, page_write, unit_vectors

from crawlrag.store.query_terms import fts5_query
from crawlrag.store.sqlite import SQLiteStore

WORDS = [f"w{i}" for i in range(60)]


def test_split_ranking_returns_the_whole_queries_top_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    store = SQLiteStore(tmp_path / "fts.db")
    try:
        store.ensure_source("a.example.com", MODEL, DIM)
        zipf = 1 / np.arange(1, len(WORDS) + 1)
        for page in range(40):
            texts = [" ".join(rng.choice(WORDS, size=30, p=zipf / zipf.sum())) for _ in range(10)]
            store.write_page(page_write(f"https://a.example.com/{page}", "a.example.com", texts, unit_vectors(rng, 10)))
        conn = sqlite3.connect(tmp_path / "fts.db")
        split_used = 0
        for _ in range(60):
            words = " ".join(rng.choice(WORDS[:40], size=int(rng.integers(2, 4)), replace=False))
            shares, total = store._term_shares("chunks_fts", words)
            query = fts5_query(words, shares, total)
            assert query is not None
            split_used += bool(query.splits)
            whole = conn.execute(
                "SELECT rowid, -bm25(chunks_fts, 1.0, 3.0, 2.0) AS score FROM chunks_fts WHERE chunks_fts MATCH ?"
                " ORDER BY score DESC LIMIT 8",
                (query.match,),
            ).fetchall()
            hits = store.keyword_search(words, 8)
            assert [round(hit.keyword_score or 0.0, 9) for hit in hits] == [round(score, 9) for _, score in whole]
            filtered = store.keyword_search(words, 8, "a.example.com", ["content"])
            assert [round(hit.keyword_score or 0.0, 9) for hit in filtered] == [round(s, 9) for _, s in whole]
        assert split_used > 20
        conn.close()
    finally:
        store.close()
