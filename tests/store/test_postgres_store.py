"""What only the PostgreSQL store has: migrations, the extension, one dimension per database, HNSW settings,
exact filtered search at a scale where a filtered HNSW scan loses rows, JSON columns and connection errors."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from backends import with_database
from psycopg import sql
from store_helpers import MODEL, brute_force, page_write, unit_vectors

from crawlrag.config import Settings
from crawlrag.models import CrawlJob
from crawlrag.store import open_store
from crawlrag.store.base import EmbeddingMismatchError, StoreError
from crawlrag.store.postgres import PostgresStore
from crawlrag.store.postgres_schema import MIGRATIONS, display_url, migrate
from crawlrag.store.postgres_search import CHUNKS, vector_sql

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    yield store
    store.close()


@pytest.fixture
def fresh_database(postgres_server_url: str) -> Iterator[str]:
    """A database without pgvector enabled, as a new user's would be."""
    name = f"crawlrag_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(postgres_server_url, dbname=name)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_migrate_creates_the_extension_and_is_idempotent(fresh_database: str) -> None:
    assert migrate(fresh_database) == len(MIGRATIONS)
    assert migrate(fresh_database) == len(MIGRATIONS)
    assert _scalar(fresh_database, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    assert _scalar(fresh_database, "SELECT count(*) FROM crawlrag_schema") == len(MIGRATIONS)
    tables = _scalar(fresh_database, "SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables"
                                     " WHERE schemaname = 'public'")  # fmt: skip
    assert tables == [
        "code_examples", "crawl_jobs", "crawled_pages", "crawlrag_schema", "pages", "source_crawls", "sources"
    ]  # fmt: skip
    # Opening a store on a migrated database migrates nothing and works.
    PostgresStore(fresh_database).close()


def test_migrate_in_a_schema_of_its_own(postgres_url: str) -> None:
    assert migrate(postgres_url) == len(MIGRATIONS)
    assert _scalar(postgres_url, "SELECT to_regclass('crawled_pages') IS NOT NULL") is True
    assert str(_scalar(postgres_url, "SELECT current_schema()")).startswith("t_")


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    migrate(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO crawlrag_schema (version) VALUES (999)")
    with pytest.raises(StoreError, match="newer"):
        migrate(postgres_url)


def test_first_source_types_the_vector_columns_and_builds_hnsw(pg: PostgresStore, postgres_url: str) -> None:
    column_type = (
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = '{}'::regclass AND attname = 'embedding'"
    )
    assert _scalar(postgres_url, column_type.format("crawled_pages")) == "vector"
    pg.ensure_source("a.example.com", MODEL, 384)
    for table in ("crawled_pages", "code_examples"):
        assert _scalar(postgres_url, column_type.format(table)) == "vector(384)"
        index = _scalar(postgres_url, f"SELECT indexdef FROM pg_indexes WHERE indexname = '{table}_embedding_hnsw'")
        assert "hnsw" in str(index) and "vector_cosine_ops" in str(index)
    assert pg.stats()["embedding_dim"] == 384


def test_mixing_dimensions_is_refused_until_the_database_is_empty(pg: PostgresStore) -> None:
    rng = np.random.default_rng(1)
    pg.ensure_source("a.example.com", MODEL, 8)
    pg.write_page(page_write("https://a.example.com/", "a.example.com", ["x"], unit_vectors(rng, 1, 8)))

    with pytest.raises(EmbeddingMismatchError, match=r"stores 8-dimension embeddings \(sources: a\.example\.com\)"):
        pg.ensure_source("b.example.com", "wide-model", 12)
    assert pg.source_embedding("b.example.com") is None

    pg.delete_source("a.example.com")
    pg.ensure_source("b.example.com", "wide-model", 12)
    pg.write_page(page_write("https://b.example.com/", "b.example.com", ["y"], unit_vectors(rng, 1, 12)))
    assert len(pg.vector_search(unit_vectors(rng, 1, 12)[0], 5)) == 1
    with pytest.raises(StoreError, match="12"):
        pg.vector_search(unit_vectors(rng, 1, 8)[0], 5)


def test_settings_reach_every_pooled_connection(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, hnsw_ef_search=123, pool_min_size=2, pool_max_size=2)
    try:
        with store._connection() as first, store._connection() as second:
            for conn in (first, second):
                assert conn.execute("SHOW hnsw.ef_search").fetchone() == ("123",)
                assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("strict_order",)
    finally:
        store.close()
    with pytest.raises(StoreError, match="hnsw_ef_search"):
        PostgresStore(postgres_url, hnsw_ef_search=0)


def test_filtered_search_stays_exact_where_filtered_hnsw_loses_rows(pg: PostgresStore, postgres_url: str) -> None:
    """5000 rows of 384 dimensions; a source holding 1% of them must still give its exact top 10."""
    rng = np.random.default_rng(7)
    sources = [f"s{i}.example.com" for i in range(50)]
    for source in sources:
        pg.ensure_source(source, MODEL, 384)
    # Built after the load: inserting through an HNSW index costs a few ms a row on a small CI machine.
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP INDEX crawled_pages_embedding_hnsw")
    vectors, keys, owner = [], [], []
    for source in sources:
        for page in range(2):
            rows = unit_vectors(rng, 50, 384)
            url = f"https://{source}/{page}"
            pg.write_page(page_write(url, source, [f"text {i}" for i in range(50)], rows))
            vectors.append(rows)
            keys += [(url, i) for i in range(50)]
            owner += [source] * 50
    matrix = np.concatenate(vectors)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "CREATE INDEX crawled_pages_embedding_hnsw ON crawled_pages USING hnsw (embedding vector_cosine_ops)"
        )
        conn.execute("ANALYZE crawled_pages")
    target = sources[17]
    keep = [i for i, s in enumerate(owner) if s == target]
    for query in unit_vectors(rng, 5, 384):
        hits = pg.vector_search(query, 10, target)
        expected = brute_force(matrix[keep], [keys[i] for i in keep], query, 10)
        assert [(hit.url, hit.chunk_index) for hit in hits] == expected
        assert {hit.source_id for hit in hits} == {target}


def test_json_is_stored_as_jsonb_objects(pg: PostgresStore, postgres_url: str) -> None:
    pg.ensure_source("a.example.com", MODEL, 4)
    vectors = unit_vectors(np.random.default_rng(), 1, 4)
    pg.write_page(page_write("https://a.example.com/", "a.example.com", ["x"], vectors))
    pg.save_job(CrawlJob(job_id="j", url="https://a.example.com/", options={"depth": 1}))
    assert _scalar(postgres_url, "SELECT jsonb_typeof(metadata) FROM crawled_pages") == "object"
    assert _scalar(postgres_url, "SELECT metadata->>'source' FROM crawled_pages") == "a.example.com"
    assert _scalar(postgres_url, "SELECT options->>'depth' FROM crawl_jobs") == "1"


def test_nul_characters_become_replacement_characters(pg: PostgresStore) -> None:
    pg.ensure_source("a.example.com", MODEL, 4)
    vectors = unit_vectors(np.random.default_rng(), 1, 4)
    pg.write_page(page_write("https://a.example.com/", "a.example.com", ["a\x00b"], vectors))
    [hit] = pg.vector_search(vectors[0], 1)
    assert hit.content == "a\ufffdb"


def test_unreachable_server_raises_store_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore(f"postgresql://nobody@127.0.0.1:{port}/none", connect_timeout=2)


def test_display_url_hides_the_password() -> None:
    assert (
        display_url("postgresql://user:secret@db.example.com:5433/crawl")
        == "postgresql://user@db.example.com:5433/crawl"
    )


def test_open_store_selects_postgres_for_postgresql_urls(fresh_database: str) -> None:
    if not fresh_database.startswith("postgresql://"):
        pytest.skip("the test server URL is not in URL form")
    for url in (fresh_database, fresh_database.replace("postgresql://", "postgres://", 1)):
        store = open_store(Settings(_env_file=None, database_url=url))
        try:
            assert isinstance(store, PostgresStore)
            assert store.stats()["backend"] == "postgres"
        finally:
            store.close()


def test_hnsw_scan_returns_more_rows_than_ef_search(postgres_url: str) -> None:
    """The hybrid candidate pool (e.g. 120) may exceed ef_search: iterative scans must still fill it."""
    store = PostgresStore(postgres_url, hnsw_ef_search=10, pool_max_size=1)
    try:
        rng = np.random.default_rng(3)
        store.ensure_source("a.example.com", MODEL, 16)
        for page in range(20):
            url = f"https://a.example.com/{page}"
            store.write_page(page_write(url, "a.example.com", [f"t{i}" for i in range(10)], unit_vectors(rng, 10)))
        with store._connection() as conn:
            conn.execute("SET enable_seqscan = off")  # the planner would scan 200 rows; make it use the index
            plan = conn.execute(
                "EXPLAIN SELECT id FROM crawled_pages ORDER BY embedding <=> %s LIMIT 150", (unit_vectors(rng, 1)[0],)
            ).fetchall()
            assert "crawled_pages_embedding_hnsw" in str(plan)
            query = {"query": unit_vectors(rng, 1)[0], "limit": 150}
            assert len(conn.execute(vector_sql(CHUNKS, filtered=False), query).fetchall()) == 150
            conn.execute("RESET enable_seqscan")
    finally:
        store.close()
