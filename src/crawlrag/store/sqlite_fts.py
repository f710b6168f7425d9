"""FTS5 ranking for the SQLite store: the best rows by bm25, scoring as few matching rows as stays exact.

FTS5 computes bm25 for every row a query matches (about 3 µs a row at 100k chunks: the row's term positions
and its length in the docsize table), so the cost grows with the rows that hold any query term. A query with a
rare and a common term first ranks the rows holding the rare one; when enough of them score above what any row
holding only common terms could reach (query_terms.Fts5Split), the rows of the common terms are scored only
where they also hold a rare one. The top rows are the same as ranking the whole OR query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from crawlrag.store.query_terms import Fts5Query


def best_rows(
    conn: sqlite3.Connection,
    table: str,
    weights: str,
    query: Fts5Query,
    limit: int,
    *,
    join: str = "",
    filters: str = "",
    params: Sequence[object] = (),
) -> list[tuple[int, float]]:
    """(rowid, score) of the `limit` best rows, best first (bm25, higher is better).

    `join` and `filters` (SQL after the MATCH, with `params`) restrict the rows.
    """
    # bm25() in ORDER BY with a LIMIT: SQLite's sorter keeps only the best rows while FTS5 scores each match
    # (a third faster than `ORDER BY rank` with `rank MATCH`, which FTS5 runs as a nested query).
    sql = (
        f"SELECT {table}.rowid, bm25({table}, {weights}) AS rank FROM {table}{join} "
        f"WHERE {table} MATCH ?{filters} ORDER BY rank LIMIT ?"
    )

    def rank(match: str) -> list[tuple[int, float]]:
        return [(int(rowid), -float(score)) for rowid, score in conn.execute(sql, (match, *params, limit))]

    for split in query.splits:
        first = rank(split.rare)
        if len(first) < limit or first[-1][1] <= split.bound:
            continue
        best = dict(first)
        for rowid, score in rank(split.both):  # the exact score of rows holding common parts too
            best[rowid] = max(score, best.get(rowid, score))
        return sorted(best.items(), key=lambda item: -item[1])[:limit]
    return rank(query.match)
