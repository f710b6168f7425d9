"""Re-embedding support for the SQLite store: reading a source's texts and swapping in new vectors."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from crawlrag.store.base import (
    EmbeddingMismatchError,
    SourceEmbeddings,
    SourceTexts,
    StoredChunkText,
    StoredCodeText,
    StoreError,
)
from crawlrag.store.sqlite_write import blob

_MOVED = {
    "chunks": (
        "page_id, source_id, url, chunk_index, title, headings, content, content_hash, embed_hash, embedding_model,"
        " char_count, word_count, embedding, anchor, kind",
        "t.page_id, t.source_id, t.url, t.chunk_index, t.title, t.headings, t.content, t.content_hash, r.embed_hash,"
        " :model, t.char_count, t.word_count, r.embedding, t.anchor, t.kind",
    ),
    "code_examples": (
        "page_id, source_id, url, chunk_index, language, code, summary, context_before, context_after, headings,"
        " embedding",
        "t.page_id, t.source_id, t.url, t.chunk_index, t.language, t.code, t.summary, t.context_before,"
        " t.context_after, t.headings, r.embedding",
    ),
}


def source_texts(conn: sqlite3.Connection, source_id: str) -> SourceTexts:
    chunks = [
        StoredChunkText(*row)
        for row in conn.execute(
            "SELECT id, url, title, headings, chunk_index, content FROM chunks WHERE source_id = ?"
            " ORDER BY page_id, chunk_index",
            (source_id,),
        )
    ]
    code = [
        StoredCodeText(*row)
        for row in conn.execute(
            "SELECT id, summary, code FROM code_examples WHERE source_id = ? ORDER BY page_id, chunk_index",
            (source_id,),
        )
    ]
    return SourceTexts(source_id, chunks, code)


def _check_unchanged(conn: sqlite3.Connection, table: str, source_id: str, ids: Sequence[int]) -> None:
    stored = {row[0] for row in conn.execute(f"SELECT id FROM {table} WHERE source_id = ?", (source_id,))}
    if stored != {int(i) for i in ids}:
        raise StoreError(f"source {source_id!r} changed while it was re-embedded (a crawl ran?): run reindex again")


def _check_others(conn: sqlite3.Connection, dimension: int, updated: set[str]) -> None:
    # One in-memory matrix holds every source's vectors, so they must all share the dimension.
    others = [
        row[0]
        for row in conn.execute(
            "SELECT s.source_id FROM sources s WHERE s.embedding_dim IS NOT NULL AND s.embedding_dim != ?"
            " AND EXISTS (SELECT 1 FROM chunks c WHERE c.source_id = s.source_id) ORDER BY s.source_id",
            (dimension,),
        )
        if row[0] not in updated
    ]
    if others:
        raise EmbeddingMismatchError(
            f"sources {', '.join(others[:5])} keep {dimension}-incompatible embeddings: re-index them together "
            "(crawlrag reindex without --source) or delete them"
        )


def _move(conn: sqlite3.Connection, table: str, model: str, rows: list[tuple[int, str, bytes]]) -> None:
    """Re-insert rows with their new vectors under new ids, so other processes' in-memory indexes pick them up.

    Deleting and inserting (rather than updating in place) also keeps the FTS tables right through their triggers.
    """
    columns, select = _MOVED[table]
    conn.execute("CREATE TEMP TABLE reembed (old_id INTEGER PRIMARY KEY, embed_hash TEXT, embedding BLOB)")
    try:
        conn.executemany("INSERT INTO temp.reembed VALUES (?, ?, ?)", rows)
        conn.execute(
            f"CREATE TEMP TABLE moved AS SELECT {select} FROM {table} t JOIN temp.reembed r ON r.old_id = t.id"
            " ORDER BY t.id",
            {"model": model},
        )
        conn.execute(f"DELETE FROM {table} WHERE id IN (SELECT old_id FROM temp.reembed)")
        conn.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM temp.moved")
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.moved")
        conn.execute("DROP TABLE IF EXISTS temp.reembed")


def replace_embeddings(
    conn: sqlite3.Connection, model: str, dimension: int, updates: Sequence[SourceEmbeddings], now: str
) -> None:
    """Run inside the caller's write transaction."""
    _check_others(conn, dimension, {update.source_id for update in updates})
    for update in updates:
        update.check(dimension)
        _check_unchanged(conn, "chunks", update.source_id, update.chunk_ids)
        _check_unchanged(conn, "code_examples", update.source_id, update.code_ids)
        chunk_rows = [
            (int(i), h, blob(v))
            for i, h, v in zip(update.chunk_ids, update.embed_hashes, update.embeddings, strict=True)
        ]
        _move(conn, "chunks", model, chunk_rows)
        code_rows = [(int(i), "", blob(v)) for i, v in zip(update.code_ids, update.code_embeddings, strict=True)]
        _move(conn, "code_examples", model, code_rows)
        conn.execute(
            "UPDATE sources SET embedding_model = ?, embedding_dim = ?, updated_at = ? WHERE source_id = ?",
            (model, dimension, now, update.source_id),
        )
