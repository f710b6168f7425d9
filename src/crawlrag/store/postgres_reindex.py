"""Re-embedding support for the PostgreSQL store: reading a source's texts and swapping in new vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from crawlrag.store.base import (
    EmbeddingMismatchError,
    SourceEmbeddings,
    SourceTexts,
    StoredChunkText,
    StoredCodeText,
    StoreError,
)
from crawlrag.store.postgres_schema import SCHEMA_LOCK_KEY, VECTOR_TABLES, column_dimension, retype_columns

_COPY = "COPY reembed (id, embed_hash, embedding) FROM STDIN (FORMAT BINARY)"


def source_texts(conn: psycopg.Connection[Any], source_id: str) -> SourceTexts:
    chunks = [
        StoredChunkText(*row)
        for row in conn.execute(
            "SELECT id, url, title, headings, chunk_number, content FROM crawled_pages WHERE source_id = %s"
            " ORDER BY page_id, chunk_number",
            (source_id,),
        )
    ]
    code = [
        StoredCodeText(*row)
        for row in conn.execute(
            "SELECT id, summary, content FROM code_examples WHERE source_id = %s ORDER BY page_id, chunk_number",
            (source_id,),
        )
    ]
    return SourceTexts(source_id, chunks, code)


def _check_unchanged(conn: psycopg.Connection[Any], table: str, source_id: str, ids: Sequence[int]) -> None:
    query = sql.SQL("SELECT id FROM {} WHERE source_id = %s").format(sql.Identifier(table))
    stored = {row[0] for row in conn.execute(query, (source_id,))}
    if stored != {int(i) for i in ids}:
        raise StoreError(f"source {source_id!r} changed while it was re-embedded (a crawl ran?): run reindex again")


def _check_others(conn: psycopg.Connection[Any], dimension: int, updated: list[str]) -> None:
    # One database holds one dimension (the columns are typed, the HNSW index covers every row).
    others = [
        row[0]
        for row in conn.execute(
            "SELECT s.source_id FROM sources s WHERE s.embedding_dim IS DISTINCT FROM %s AND NOT s.source_id = ANY(%s)"
            " AND EXISTS (SELECT FROM crawled_pages c WHERE c.source_id = s.source_id) ORDER BY s.source_id",
            (dimension, updated),
        )
    ]
    if others:
        raise EmbeddingMismatchError(
            f"sources {', '.join(others[:5])} keep embeddings of another dimension than {dimension}: re-index them "
            "together (crawlrag reindex without --source) or delete them"
        )


def _load(conn: psycopg.Connection[Any], rows: Sequence[tuple[int, str, Any]], vector_oid: int) -> None:
    conn.execute("TRUNCATE reembed")
    with conn.cursor() as cur, cur.copy(_COPY) as copy:
        copy.set_types(["int8", "text", vector_oid])
        for row in rows:
            copy.write_row(row)


def replace_embeddings(
    conn: psycopg.Connection[Any],
    model: str,
    dimension: int,
    updates: Sequence[SourceEmbeddings],
    vector_oid: int,
) -> None:
    """Run inside the caller's transaction: COPY the new vectors into a temporary table, then UPDATE from it."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))  # against concurrent dimension changes
    _check_others(conn, dimension, [update.source_id for update in updates])
    retype = column_dimension(conn) not in (None, dimension)
    if retype:
        # Untyped while rows of both dimensions coexist; typed again (and re-indexed) once all are replaced.
        for table in VECTOR_TABLES:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(f"{table}_embedding_hnsw")))
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN embedding TYPE vector").format(sql.Identifier(table)))
    conn.execute("CREATE TEMP TABLE reembed (id bigint PRIMARY KEY, embed_hash text, embedding vector) ON COMMIT DROP")
    for update in updates:
        update.check(dimension)
        _check_unchanged(conn, "crawled_pages", update.source_id, update.chunk_ids)
        _check_unchanged(conn, "code_examples", update.source_id, update.code_ids)
        chunk_rows = list(zip((int(i) for i in update.chunk_ids), update.embed_hashes, update.embeddings, strict=True))
        _load(conn, chunk_rows, vector_oid)
        conn.execute(
            "UPDATE crawled_pages c SET embedding = r.embedding, embed_hash = r.embed_hash, embedding_model = %s"
            " FROM reembed r WHERE c.id = r.id",
            (model,),
        )
        _load(conn, [(int(i), "", vector) for i, vector in zip(update.code_ids, update.code_embeddings, strict=True)],
              vector_oid)  # fmt: skip
        conn.execute("UPDATE code_examples e SET embedding = r.embedding FROM reembed r WHERE e.id = r.id")
        conn.execute(
            "UPDATE sources SET embedding_model = %s, embedding_dim = %s, updated_at = now() WHERE source_id = %s",
            (model, dimension, update.source_id),
        )
    if retype or column_dimension(conn) is None:
        retype_columns(conn, dimension)
