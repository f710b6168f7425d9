"""The versions migration, from a database made by the schema before it, with pages, chunks and code examples.

Its pages become version `latest` (whose key is the site, so no row changes key), page and chunk ids and the
keyword index stay as they were, and the same URL can then be stored again under another version.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest
from store_helpers import DIM, MODEL, page_write, unit_vectors

from crawlrag.sources.versions import source_key
from crawlrag.store import postgres_schema, sqlite_schema
from crawlrag.store.postgres import PostgresStore
from crawlrag.store.sqlite import SQLiteStore

SITE = "docs.example.com"
URL = "https://docs.example.com/guide/"
NOW = "2026-01-01T00:00:00+00:00"


def _old_sqlite(path: Path, vector: np.ndarray) -> None:
    earlier = sqlite_schema.MIGRATIONS[: sqlite_schema.MIGRATIONS.index(sqlite_schema._pages_keyed_by_source)]
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(earlier, start=1):
        assert isinstance(script, str)
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    blob = np.asarray(vector, dtype=np.float32).tobytes()
    conn.executescript("BEGIN;")
    conn.execute(
        "INSERT INTO sources (source_id, embedding_model, embedding_dim, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (SITE, MODEL, DIM, NOW, NOW),
    )
    conn.execute(
        "INSERT INTO pages (id, url, source_id, title, markdown, content_hash, chunk_count, crawled_at)"
        " VALUES (7, ?, ?, 'Guide', 'old pagination guide', 'h', 1, ?)",
        (URL, SITE, NOW),
    )
    conn.execute(
        "INSERT INTO chunks (id, page_id, source_id, url, chunk_index, content, content_hash, embed_hash,"
        " embedding_model, char_count, word_count, embedding) VALUES (41, 7, ?, ?, 0, 'old pagination guide',"
        " 'c', 'e', ?, 20, 3, ?)",
        (SITE, URL, MODEL, blob),
    )
    conn.execute(
        "INSERT INTO code_examples (id, page_id, source_id, url, chunk_index, code, summary, embedding)"
        " VALUES (5, 7, ?, ?, 0, 'paginate()', 'paginate results', ?)",
        (SITE, URL, blob),
    )
    conn.execute("COMMIT")
    conn.close()


def test_sqlite_migration_keeps_pages_chunks_and_keyword_index(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "old.db"
    vector = unit_vectors(rng, 1)[0]
    _old_sqlite(path, vector)

    store = SQLiteStore(path)
    try:
        assert store.schema_version == len(sqlite_schema.MIGRATIONS)
        [info] = store.list_sources()
        assert (info.source_id, info.site, info.version, info.pages, info.chunks) == (SITE, SITE, "latest", 1, 1)
        page = store.get_page(URL, SITE)
        assert page is not None and page.title == "Guide"
        [hit] = store.keyword_search("pagination", 5)
        assert (hit.chunk_id, hit.source_id) == (41, SITE)
        assert [h.chunk_id for h in store.vector_search(vector, 5, [SITE])] == [41]
        assert [h.example_id for h in store.code_keyword_search("paginate", 5)] == [5]

        # The same URL under another version is a second page; the old one and its chunks stay.
        key = source_key(SITE, "2.0")
        store.ensure_source(key, MODEL, DIM)
        store.write_page(page_write(URL, key, ["new pagination guide"], unit_vectors(rng, 1)))
        assert {h.source_id for h in store.keyword_search("pagination", 5)} == {SITE, key}
        # A foreign key still cascades: deleting the old version removes its chunks and FTS rows.
        store.delete_sources([SITE])
        assert [h.source_id for h in store.keyword_search("pagination", 5)] == [key]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            assert conn.execute("SELECT count(*) FROM chunks WHERE page_id = 7").fetchone() == (0,)
    finally:
        store.close()
    reopened = SQLiteStore(path)  # migrating again is a no-op
    reopened.close()


@pytest.mark.postgres
def test_postgres_migration_keeps_pages_and_allows_versions(postgres_url: str, rng: np.random.Generator) -> None:
    earlier = postgres_schema.MIGRATIONS[: _postgres_versions_position()]
    vector = unit_vectors(rng, 1)[0]
    literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE crawlrag_schema (version integer PRIMARY KEY, applied_at timestamptz DEFAULT now())")
        for number, script in enumerate(earlier, start=1):
            conn.execute(script)
            conn.execute("INSERT INTO crawlrag_schema (version) VALUES (%s)", (number,))
        conn.execute(
            "INSERT INTO sources (source_id, embedding_model, embedding_dim) VALUES (%s, %s, %s)", (SITE, MODEL, DIM)
        )
        page_id = conn.execute(
            "INSERT INTO pages (url, source_id, title, markdown, content_hash, chunk_count)"
            " VALUES (%s, %s, 'Guide', 'old pagination guide', 'h', 1) RETURNING id",
            (URL, SITE),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO crawled_pages (page_id, source_id, url, chunk_number, content, content_hash, embed_hash,"
            " embedding_model, char_count, word_count, embedding)"
            " VALUES (%s, %s, %s, 0, 'old pagination guide', 'c', 'e', %s, 20, 3, %s::vector)",
            (page_id, SITE, URL, MODEL, literal),
        )
        postgres_schema.retype_columns(conn, DIM)

    store = PostgresStore(postgres_url, hnsw_ef_search=100, pool_max_size=2)
    try:
        [info] = store.list_sources()
        assert (info.source_id, info.site, info.version, info.pages, info.chunks) == (SITE, SITE, "latest", 1, 1)
        assert store.get_page(URL, SITE) is not None
        assert [h.source_id for h in store.keyword_search("pagination", 5)] == [SITE]
        key = source_key(SITE, "2.0")
        store.ensure_source(key, MODEL, DIM)
        store.write_page(page_write(URL, key, ["new pagination guide"], unit_vectors(rng, 1)))
        assert {h.source_id for h in store.keyword_search("pagination", 5)} == {SITE, key}
        assert {h.source_id for h in store.vector_search(vector, 5, [SITE])} == {SITE}
        store.write_page(page_write(URL, key, ["newer pagination guide"], unit_vectors(rng, 1)))  # replaced in place
        assert sorted(h.content for h in store.keyword_search("pagination", 5)) == [
            "newer pagination guide",
            "old pagination guide",
        ]
    finally:
        store.close()


def _postgres_versions_position() -> int:
    return next(i for i, script in enumerate(postgres_schema.MIGRATIONS) if "ADD COLUMN site" in script)
