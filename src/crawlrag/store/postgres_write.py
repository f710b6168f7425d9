"""Writing one page to PostgreSQL: the page row, then its chunks and code examples by binary COPY."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from crawlrag.models import Chunk, CodeExample
from crawlrag.store.base import PageWrite

_CHUNK_COPY = (
    "COPY crawled_pages (page_id, source_id, url, chunk_number, title, headings, content, content_hash,"
    " embed_hash, embedding_model, char_count, word_count, metadata, anchor, kind, embedding)"
    " FROM STDIN (FORMAT BINARY)"
)
_CHUNK_TYPES = ["int8", "text", "text", "int4", "text", "text", "text", "text", "text", "text", "int4", "int4", "jsonb",
                "text", "text"]  # fmt: skip
_CODE_COPY = (
    "COPY code_examples (page_id, source_id, url, chunk_number, language, content, summary, context_before,"
    " context_after, headings, metadata, embedding) FROM STDIN (FORMAT BINARY)"
)
_CODE_TYPES = ["int8", "text", "text", "int4", "text", "text", "text", "text", "text", "text", "jsonb"]

_UPSERT_PAGE = """
    INSERT INTO pages (url, source_id, title, markdown, content_hash, word_count, chunk_count, etag,
                       last_modified, kind, crawled_at, index_fingerprint, links)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s, %s)
    ON CONFLICT (source_id, url) DO UPDATE SET
        title = EXCLUDED.title, markdown = EXCLUDED.markdown,
        content_hash = EXCLUDED.content_hash, word_count = EXCLUDED.word_count,
        chunk_count = EXCLUDED.chunk_count, etag = EXCLUDED.etag,
        last_modified = EXCLUDED.last_modified, kind = EXCLUDED.kind, crawled_at = EXCLUDED.crawled_at,
        index_fingerprint = EXCLUDED.index_fingerprint, links = EXCLUDED.links
    RETURNING id
"""


def clean(value: str) -> str:
    """PostgreSQL text cannot hold NUL (SQLite can): a visible replacement beats failing the whole page."""
    return value.replace("\x00", "\ufffd")


def clean_opt(value: str | None) -> str | None:
    return None if value is None else clean(value)


def check_lengths(write: PageWrite) -> np.ndarray:
    """Validate before any SQL runs, as the SQLite store does; return the code vectors (possibly empty)."""
    if len(write.chunks) != len(write.embeddings) or len(write.chunks) != len(write.embed_hashes):
        raise ValueError("chunks, embeddings and embed_hashes must have the same length")
    code_vectors = write.code_embeddings if write.code_embeddings is not None else np.zeros((0, 0))
    if len(write.code_examples) != len(code_vectors):
        raise ValueError("code_examples and code_embeddings must have the same length")
    return code_vectors


def _chunk_row(
    page_id: int, source_id: str, url: str, model: str, chunk: Chunk, embed_hash: str, kind: str
) -> list[Any]:
    # Upstream's crawled_pages.metadata keys, for tools written against that schema.
    metadata = {
        "url": url,
        "source": source_id,
        "chunk_index": chunk.chunk_index,
        "headers": clean(chunk.headings),
        "char_count": chunk.char_count,
        "word_count": chunk.word_count,
    }
    title, headings, content = (clean(text) for text in (chunk.title, chunk.headings, chunk.content))
    return [page_id, source_id, url, chunk.chunk_index, title, headings, content, chunk.content_hash, embed_hash,
            model, chunk.char_count, chunk.word_count, Jsonb(metadata), clean(chunk.anchor), kind]  # fmt: skip


def _code_row(page_id: int, source_id: str, url: str, example: CodeExample) -> list[Any]:
    metadata = {
        "url": url,
        "source": source_id,
        "chunk_index": example.chunk_index,
        "language": example.language,
        "headers": clean(example.headings),
        "char_count": len(example.code),
    }
    texts = [example.language, example.code, example.summary, example.context_before, example.context_after,
             example.headings]  # fmt: skip
    return [page_id, source_id, url, example.chunk_index, *(clean(text) for text in texts), Jsonb(metadata)]


def write_page(conn: psycopg.Connection[Any], write: PageWrite, vector_oid: int) -> None:
    """Replace the page, its chunks and code examples; the caller holds the transaction."""
    page = write.page
    code_vectors = check_lengths(write)
    url, source_id = clean(page.url), page.source_id
    # Serialise writers of one page across processes: the second waits, then replaces the first's version.
    row = conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s || ' ' || %s)),"
        " (SELECT embedding_model FROM sources WHERE source_id = %s)",
        (source_id, url, source_id),
    ).fetchone()
    model = (row[1] if row else None) or ""
    page_row = conn.execute(
        _UPSERT_PAGE,
        (url, source_id, clean(page.title), clean(page.markdown), page.content_hash, page.word_count,
         len(write.chunks), clean_opt(page.etag), clean_opt(page.last_modified), page.kind, write.fingerprint,
         Jsonb([clean(link) for link in page.links])),
    ).fetchone()  # fmt: skip
    assert page_row is not None
    page_id = int(page_row[0])
    # The page row is updated in place (its id stays), so its old chunks and examples are removed explicitly.
    conn.execute(
        "WITH gone AS (DELETE FROM crawled_pages WHERE page_id = %(id)s)"
        " DELETE FROM code_examples WHERE page_id = %(id)s",
        {"id": page_id},
    )
    with conn.cursor() as cur:
        if write.chunks:
            with cur.copy(_CHUNK_COPY) as copy:
                copy.set_types([*_CHUNK_TYPES, vector_oid])  # the vector type's oid differs per database
                for chunk, vector, embed_hash in zip(write.chunks, write.embeddings, write.embed_hashes, strict=True):
                    row = _chunk_row(page_id, source_id, url, model, chunk, embed_hash, page.kind)
                    copy.write_row([*row, vector])
        if write.code_examples:
            with cur.copy(_CODE_COPY) as copy:
                copy.set_types([*_CODE_TYPES, vector_oid])
                for example, vector in zip(write.code_examples, code_vectors, strict=True):
                    copy.write_row([*_code_row(page_id, source_id, url, example), vector])
    conn.execute("UPDATE sources SET updated_at = now() WHERE source_id = %s", (source_id,))
