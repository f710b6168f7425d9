"""Bringing an in-memory vector matrix in line with its SQLite table after other connections' commits.

Ids only grow (AUTOINCREMENT), so new rows are the ones above the matrix's largest id: one range scan of the
primary key. Deleted rows (and rows added below that id, which the store's write path never lets happen) show
as a difference in row counts; only then are all ids read and compared, which costs a scan of the whole table
(tens of milliseconds at 100k rows) and would otherwise be paid after every commit.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from crawlrag.store.vector_index import VectorIndex

_BATCH = 500


def _add_rows(index: VectorIndex, rows: list[tuple[int, str, bytes, str]]) -> None:
    if rows:
        vectors = np.stack([np.frombuffer(row[2], dtype=np.float32) for row in rows])
        index.add([row[0] for row in rows], vectors, [row[1] for row in rows], [row[3] for row in rows])


def catch_up(conn: sqlite3.Connection, table: str, index: VectorIndex, kind: str) -> None:
    """Add `table`'s rows that `index` lacks and remove the ones the table no longer holds.

    `kind` is the SQL expression of a row's kind. Reads one snapshot when `conn` is inside a transaction.
    """
    columns = f"id, source_id, embedding, {kind}"
    newer = conn.execute(f"SELECT {columns} FROM {table} WHERE id > ? ORDER BY id", (index.max_id,)).fetchall()
    _add_rows(index, newer)
    if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == len(index):
        return
    stored = np.array([row[0] for row in conn.execute(f"SELECT id FROM {table}")], dtype=np.int64)
    index.remove(np.setdiff1d(index.ids(), stored))
    missing = np.setdiff1d(stored, index.ids()).tolist()
    for start in range(0, len(missing), _BATCH):
        batch = missing[start : start + _BATCH]
        marks = ",".join("?" * len(batch))
        _add_rows(index, conn.execute(f"SELECT {columns} FROM {table} WHERE id IN ({marks})", batch).fetchall())
