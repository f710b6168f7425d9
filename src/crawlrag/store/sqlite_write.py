"""Writing one page of the SQLite store: the caller holds the write transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import numpy as np

from crawlrag.models import utcnow
from crawlrag.store.base import PageWrite


@dataclass(frozen=True, slots=True)
class WrittenPage:
    """Row ids the in-memory vector indexes must drop and add once the transaction commits."""

    old_chunk_ids: list[int]
    old_code_ids: list[int]
    chunk_ids: list[int]
    code_ids: list[int]


def blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def replace_page(conn: sqlite3.Connection, write: PageWrite, model_name: str) -> WrittenPage:
    """Delete the page's previous version (chunks and code examples cascade) and insert the new one."""
    page = write.page
    old = conn.execute("SELECT id FROM pages WHERE source_id = ? AND url = ?", (page.source_id, page.url)).fetchone()
    old_chunks: list[int] = []
    old_code: list[int] = []
    if old:
        old_chunks = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE page_id = ?", (old[0],))]
        old_code = [r[0] for r in conn.execute("SELECT id FROM code_examples WHERE page_id = ?", (old[0],))]
        conn.execute("DELETE FROM pages WHERE id = ?", (old[0],))
    page_id = conn.execute(
        "INSERT INTO pages (url, source_id, title, markdown, content_hash, word_count, chunk_count, etag,"
        " last_modified, crawled_at, kind, index_fingerprint, links) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            page.url,
            page.source_id,
            page.title,
            page.markdown,
            page.content_hash,
            page.word_count,
            len(write.chunks),
            page.etag,
            page.last_modified,
            utcnow().isoformat(),
            page.kind,
            write.fingerprint,
            json.dumps(page.links),
        ),
    ).lastrowid
    chunk_ids = [
        conn.execute(
            "INSERT INTO chunks (page_id, source_id, url, chunk_index, title, headings, content, content_hash,"
            " embed_hash, embedding_model, char_count, word_count, embedding, anchor, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                page_id,
                page.source_id,
                page.url,
                chunk.chunk_index,
                chunk.title,
                chunk.headings,
                chunk.content,
                chunk.content_hash,
                embed_hash,
                model_name,
                chunk.char_count,
                chunk.word_count,
                blob(vector),
                chunk.anchor,
                page.kind,
            ),
        ).lastrowid
        for chunk, vector, embed_hash in zip(write.chunks, write.embeddings, write.embed_hashes, strict=True)
    ]
    code_vectors = write.code_embeddings if write.code_embeddings is not None else np.zeros((0, 0))
    code_ids = [
        conn.execute(
            "INSERT INTO code_examples (page_id, source_id, url, chunk_index, language, code, summary,"
            " context_before, context_after, headings, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                page_id,
                page.source_id,
                page.url,
                example.chunk_index,
                example.language,
                example.code,
                example.summary,
                example.context_before,
                example.context_after,
                example.headings,
                blob(vector),
            ),
        ).lastrowid
        for example, vector in zip(write.code_examples, code_vectors, strict=True)
    ]
    conn.execute("UPDATE sources SET updated_at = ? WHERE source_id = ?", (utcnow().isoformat(), page.source_id))
    return WrittenPage(
        old_chunks, old_code, [int(i) for i in chunk_ids if i is not None], [int(i) for i in code_ids if i is not None]
    )
