"""The PostgreSQL + pgvector store: a connection pool, per-page transactions, HNSW and full-text indexes."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool, PoolTimeout

from crawlrag.models import CodeHit, CrawlJob, DeletedCounts, SearchHit, SourceInfo, SourceVersion, StoredPage
from crawlrag.sources.versions import split_source_key
from crawlrag.store import postgres_jobs, postgres_refresh, postgres_reindex, postgres_write
from crawlrag.store.base import (
    EmbeddingMismatchError,
    PageWrite,
    RefreshSchedule,
    SourceCrawl,
    SourceEmbeddings,
    SourceTexts,
    StoreError,
    source_filter,
)
from crawlrag.store.postgres_schema import (
    column_dimension,
    connect,
    display_url,
    migrate,
    migrate_connection,
    set_dimension,
    vector_type_oid,
)
from crawlrag.store.postgres_search import (
    CHUNKS,
    CODE,
    SearchTable,
    keyword_sql,
    lexeme,
    term_rows_sql,
    total_rows_sql,
    tsquery_terms,
    vector_sql,
)
from crawlrag.store.postgres_vector import register_vector
from crawlrag.store.postgres_write import check_lengths, clean
from crawlrag.store.query_terms import TermShares, keyword_terms

__all__ = ["PostgresStore", "migrate"]

_TABLES = ("sources", "pages", "crawled_pages", "code_examples", "crawl_jobs", "source_crawls", "crawlrag_schema")


def _chunk_hit(
    row: tuple[Any, ...], *, similarity: float | None = None, keyword_score: float | None = None
) -> SearchHit:
    """A hit from a row of CHUNKS.columns followed by its score."""
    score = similarity if similarity is not None else keyword_score
    return SearchHit(
        *row[:7], anchor=row[7], kind=row[8], score=score or 0.0, similarity=similarity, keyword_score=keyword_score
    )


def _kinds(kinds: Collection[str] | None) -> list[str] | None:
    return None if kinds is None else list(kinds)


def _sources(sources: Collection[str] | None) -> list[str] | None:
    keys = source_filter(sources)
    return None if keys is None else list(keys)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _page_where(url: str, source_id: str | None) -> tuple[str, tuple[str, ...]]:
    """The page (source_id, url), or with no source the URL's most recently crawled page of any version."""
    if source_id is not None:
        return "source_id = %s AND url = %s", (source_id, clean(url))
    return "url = %s ORDER BY crawled_at DESC, id DESC LIMIT 1", (clean(url),)


class PostgresStore:
    """Thread-safe: each call borrows a pooled connection. Several processes may share one database."""

    def __init__(
        self,
        url: str,
        *,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        pool_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        hnsw_ef_search: int = 100,
    ) -> None:
        if not 1 <= hnsw_ef_search <= 1000:
            raise StoreError(f"hnsw_ef_search must be between 1 and 1000 (pgvector's range), got {hnsw_ef_search}")
        if not 1 <= pool_min_size <= pool_max_size:
            raise StoreError(f"need 1 <= pool_min_size <= pool_max_size, got {pool_min_size} and {pool_max_size}")
        self.url = url
        self.hnsw_ef_search = hnsw_ef_search
        self._display = display_url(url)
        self._term_shares = TermShares()
        # Migrate on a connection of its own: the pooled ones register the vector type, which may not exist yet.
        with connect(url, connect_timeout=connect_timeout) as conn, self._errors():
            migrate_connection(conn)
            self._vector_oid = vector_type_oid(conn)
            self._dimension = column_dimension(conn)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=pool_min_size,
            max_size=pool_max_size,
            timeout=pool_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            configure=self._configure,
            open=False,
            name="crawlrag",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout + 5)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"cannot open connections to PostgreSQL at {self._display}: {exc}") from exc

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        register_vector(conn, self._vector_oid)
        conn.execute(
            # strict_order iterative scans keep an unfiltered HNSW search going until it has `limit` live rows
            # (dead rows of replaced pages would otherwise shorten the list); custom plans let the planner see
            # each query's real LIMIT and source instead of a generic guess.
            "SELECT set_config('hnsw.ef_search', %s, false), set_config('hnsw.iterative_scan', 'strict_order', false),"
            " set_config('plan_cache_mode', 'force_custom_plan', false)",
            (str(self.hnsw_ef_search),),
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn driver and pool failures into StoreError messages that say what to do."""
        try:
            yield
        except PoolTimeout as exc:
            raise StoreError(
                f"no PostgreSQL connection became free within the pool timeout ({self._display}): raise the pool "
                f"size or check the server ({exc})"
            ) from exc
        except errors.ForeignKeyViolation as exc:
            raise StoreError(f"unknown source: call ensure_source before writing its pages ({exc})") from exc
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL at {self._display} is unreachable or failing: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error ({self._display}): {exc}") from exc

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._errors(), self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection with the store's error messages (the job queue's SQL runs on it)."""
        with self._connection() as conn:
            yield conn

    def close(self) -> None:
        self._pool.close()

    # --- sources ------------------------------------------------------------------------------------------------
    def ensure_source(self, source_id: str, embedding_model: str, embedding_dim: int) -> None:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT embedding_model, embedding_dim FROM sources WHERE source_id = %s", (source_id,)
            ).fetchone()
            if row is not None and row[0] and (row[0], row[1]) != (embedding_model, embedding_dim):
                raise EmbeddingMismatchError(
                    f"source {source_id!r} was indexed with {row[0]} ({row[1]} dimensions) but the configured "
                    f"embedding model is {embedding_model} ({embedding_dim} dimensions): set EMBEDDING_MODEL back "
                    f"or re-embed it with `crawlrag reindex --source {source_id}`"
                )
            if column_dimension(conn) != embedding_dim:
                set_dimension(conn, embedding_dim, embedding_model)
            site, version = split_source_key(source_id)
            conn.execute(
                "INSERT INTO sources (source_id, site, version, embedding_model, embedding_dim)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source_id) DO NOTHING",
                (source_id, site, version, embedding_model, embedding_dim),
            )
        self._dimension = embedding_dim

    def source_embedding(self, source_id: str) -> tuple[str, int] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT embedding_model, embedding_dim FROM sources WHERE source_id = %s", (source_id,)
            ).fetchone()
        return (row[0], int(row[1])) if row and row[0] else None

    def set_source_summary(self, source_id: str, summary: str) -> None:
        with self._connection() as conn:
            conn.execute(
                "UPDATE sources SET summary = %s, updated_at = now() WHERE source_id = %s", (clean(summary), source_id)
            )

    def list_sources(self) -> list[SourceInfo]:
        with self._connection() as conn:
            rows = conn.execute(
                """
                SELECT s.source_id, s.summary, s.embedding_model, s.embedding_dim, s.created_at,
                       coalesce(p.pages, 0), coalesce(p.chunks, 0), coalesce(p.words, 0), coalesce(e.examples, 0),
                       p.last_crawled, s.site, s.version
                FROM sources s
                LEFT JOIN (SELECT source_id, count(*) AS pages, sum(chunk_count) AS chunks, sum(word_count) AS words,
                                  max(crawled_at) AS last_crawled
                           FROM pages GROUP BY source_id) p ON p.source_id = s.source_id
                LEFT JOIN (SELECT source_id, count(*) AS examples FROM code_examples GROUP BY source_id) e
                       ON e.source_id = s.source_id
                ORDER BY s.source_id
                """
            ).fetchall()
        return [
            SourceInfo(
                source_id=row[0],
                summary=row[1],
                embedding_model=row[2],
                embedding_dim=row[3],
                created_at=_utc(row[4]),
                pages=int(row[5]),
                chunks=int(row[6]),
                words=int(row[7]),
                code_examples=int(row[8]),
                last_crawled=_utc(row[9]),
                site=row[10],
                version=row[11],
            )
            for row in rows
        ]

    def source_versions(self) -> list[SourceVersion]:
        with self._connection() as conn:
            rows = conn.execute("SELECT source_id, site, version FROM sources ORDER BY source_id").fetchall()
        return [SourceVersion(*row) for row in rows]

    def delete_source(self, source_id: str) -> int:
        deleted = self.delete_sources([source_id]).get(source_id)
        return deleted.pages if deleted else 0

    def delete_sources(self, source_ids: Collection[str]) -> dict[str, DeletedCounts]:
        keys = list(source_filter(source_ids) or ())
        if not keys:
            return {}
        with self._transaction() as conn:
            # Counted before: chunks and code examples (their vectors and tsvectors are columns of their rows)
            # go with their pages (ON DELETE CASCADE).
            rows = conn.execute(
                """
                SELECT s.source_id, s.site, s.version,
                       (SELECT count(*) FROM crawled_pages c WHERE c.source_id = s.source_id),
                       (SELECT count(*) FROM code_examples e WHERE e.source_id = s.source_id)
                FROM sources s WHERE s.source_id = ANY(%s) FOR UPDATE
                """,
                (keys,),
            ).fetchall()
            counts = {}
            for key, site, version, chunks, code in rows:
                pages = conn.execute("DELETE FROM pages WHERE source_id = %s", (key,)).rowcount
                counts[key] = DeletedCounts(site, version, int(pages), int(chunks), int(code))
            conn.execute("DELETE FROM sources WHERE source_id = ANY(%s)", (keys,))
        return counts

    def source_texts(self, source_id: str) -> SourceTexts:
        with self._connection() as conn:
            return postgres_reindex.source_texts(conn, source_id)

    def replace_embeddings(self, model: str, dimension: int, updates: Sequence[SourceEmbeddings]) -> None:
        for update in updates:
            update.check(dimension)  # before any SQL runs, as write_page does
        with self._transaction() as conn:
            postgres_reindex.replace_embeddings(conn, model, dimension, updates, self._vector_oid)
        self._dimension = dimension

    # --- pages --------------------------------------------------------------------------------------------------
    def get_page(self, url: str, source_id: str | None = None) -> StoredPage | None:
        where, params = _page_where(url, source_id)
        with self._connection() as conn:
            row = conn.execute(
                "SELECT url, source_id, title, content_hash, chunk_count, etag, last_modified, crawled_at, kind,"
                f" index_fingerprint, links FROM pages WHERE {where}",
                params,
            ).fetchone()
        if row is None:
            return None
        links = tuple(row[10]) if row[10] is not None else None
        return StoredPage(*row[:7], crawled_at=row[7].astimezone(UTC), kind=row[8], fingerprint=row[9], links=links)

    def page_markdown(self, url: str, source_id: str | None = None) -> str | None:
        where, params = _page_where(url, source_id)
        with self._connection() as conn:
            row = conn.execute(f"SELECT markdown FROM pages WHERE {where}", params).fetchone()
        return row[0] if row else None

    def page_dates(self, pages: Collection[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        wanted = list(dict.fromkeys(pages))
        if not wanted:
            return {}
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT p.source_id, p.url, p.crawled_at FROM pages p JOIN unnest(%s::text[], %s::text[])"
                " AS w(source_id, url) ON w.source_id = p.source_id AND w.url = p.url",
                ([key for key, _ in wanted], [clean(url) for _, url in wanted]),
            ).fetchall()
        return {(row[0], row[1]): row[2].astimezone(UTC) for row in rows}

    def write_page(self, write: PageWrite) -> None:
        check_lengths(write)
        with self._transaction() as conn:
            postgres_write.write_page(conn, write, self._vector_oid)

    def touch_page(self, url: str, source_id: str) -> None:
        with self._connection() as conn:
            conn.execute(
                "UPDATE pages SET crawled_at = now() WHERE source_id = %s AND url = %s", (source_id, clean(url))
            )

    def embeddings_for(self, embed_hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(embed_hashes))
        if not unique:
            return {}
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT DISTINCT ON (embed_hash) embed_hash, embedding FROM crawled_pages"
                " WHERE embedding_model = %s AND embed_hash = ANY(%s)",
                (model, unique),
            )
            return {row[0]: row[1] for row in cur}

    # --- refresh ------------------------------------------------------------------------------------------------
    def record_crawl(
        self, source_id: str, url: str, options: Mapping[str, Any], refresh_interval_hours: float | None = None
    ) -> None:
        with self._transaction() as conn:
            postgres_refresh.record_crawl(conn, source_id, url, options, refresh_interval_hours)

    def source_crawls(self, source_id: str) -> list[SourceCrawl]:
        with self._connection() as conn:
            return postgres_refresh.source_crawls(conn, source_id)

    def refresh_schedule(self) -> list[RefreshSchedule]:
        with self._connection() as conn:
            return postgres_refresh.refresh_schedule(conn)

    def mark_refreshed(self, source_id: str) -> None:
        with self._connection() as conn:
            postgres_refresh.mark_refreshed(conn, source_id)

    def source_page_urls(self, source_id: str) -> list[str]:
        with self._connection() as conn:
            return postgres_refresh.source_page_urls(conn, source_id)

    def delete_pages(self, source_id: str, urls: Sequence[str]) -> int:
        if not urls:
            return 0
        with self._transaction() as conn:
            return postgres_refresh.delete_pages(conn, source_id, urls)

    # --- search -------------------------------------------------------------------------------------------------
    def _query_vector(self, query: np.ndarray) -> np.ndarray:
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        if self._dimension is not None and len(vector) != self._dimension:
            raise StoreError(
                f"the query vector has {len(vector)} dimensions but this database stores {self._dimension}"
            )
        return vector

    def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(query, params).fetchall()

    def vector_search(
        self,
        query: np.ndarray,
        limit: int,
        sources: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[SearchHit]:
        source_ids = _sources(sources)
        if limit <= 0 or (kinds is not None and not kinds) or source_ids == []:
            return []
        params = {"query": self._query_vector(query), "limit": limit, "sources": source_ids, "kinds": _kinds(kinds)}
        rows = self._rows(vector_sql(CHUNKS, source_ids is not None, kinds is not None), params)
        return [_chunk_hit(row, similarity=float(row[9])) for row in rows]

    def code_vector_search(
        self, query: np.ndarray, limit: int, sources: Collection[str] | None = None
    ) -> list[CodeHit]:
        source_ids = _sources(sources)
        if limit <= 0 or source_ids == []:
            return []
        params = {"query": self._query_vector(query), "limit": limit, "sources": source_ids}
        rows = self._rows(vector_sql(CODE, source_ids is not None), params)
        return [CodeHit(*row[:7], score=float(row[7]), similarity=float(row[7])) for row in rows]

    def _keyword_rows(
        self,
        table: SearchTable,
        query: str,
        limit: int,
        sources: Collection[str] | None,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        source_ids = _sources(sources)
        if limit <= 0 or (kinds is not None and not kinds) or source_ids == []:
            return []
        words, _ = keyword_terms(query.replace("\x00", " "))
        with self._connection() as conn:
            row = conn.execute(total_rows_sql(table)).fetchone()
            total = int(row[0]) if row else 0

            def count(term: str) -> int:
                found = conn.execute(term_rows_sql(table), {"term": lexeme(term)}).fetchone()
                return int(found[0]) if found else 0

            shares = self._term_shares.shares(table.name, words, total, count)
        terms = tsquery_terms(query, shares, total)
        if not terms:
            return []
        params = {
            "terms": terms,
            "query": " | ".join(terms),
            "limit": limit,
            "sources": source_ids,
            "kinds": _kinds(kinds),
        }
        return self._rows(keyword_sql(table, source_ids is not None, kinds is not None), params)

    def keyword_search(
        self, query: str, limit: int, sources: Collection[str] | None = None, kinds: Collection[str] | None = None
    ) -> list[SearchHit]:
        rows = self._keyword_rows(CHUNKS, query, limit, sources, kinds)
        return [_chunk_hit(row, keyword_score=float(row[9])) for row in rows]

    def code_keyword_search(self, query: str, limit: int, sources: Collection[str] | None = None) -> list[CodeHit]:
        rows = self._keyword_rows(CODE, query, limit, sources)
        return [CodeHit(*row[:7], score=float(row[7]), keyword_score=float(row[7])) for row in rows]

    # --- crawl jobs ---------------------------------------------------------------------------------------------
    def save_job(self, job: CrawlJob) -> None:
        with self._connection() as conn:
            postgres_jobs.save_job(conn, job)

    def get_job(self, job_id: str) -> CrawlJob | None:
        with self._connection() as conn:
            return postgres_jobs.get_job(conn, job_id)

    def list_jobs(self, limit: int = 50) -> list[CrawlJob]:
        with self._connection() as conn:
            return postgres_jobs.list_jobs(conn, limit)

    def interrupt_unfinished_jobs(self, alive: Callable[[str | None], bool] = lambda worker: False) -> int:
        with self._transaction() as conn:
            return postgres_jobs.interrupt_unfinished_jobs(conn, alive)

    # --- health -------------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._connection() as conn:
            row = conn.execute(
                """
                SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM pages),
                       (SELECT count(*) FROM crawled_pages), (SELECT count(*) FROM code_examples),
                       (SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0) FROM unnest(%s::text[]) t)
                """,
                (list(_TABLES),),
            ).fetchone()
        assert row is not None
        pool = self._pool.get_stats()
        return {
            "backend": "postgres",
            "url": self._display,
            "bytes": int(row[4]),
            "sources": row[0],
            "pages": row[1],
            "chunks": row[2],
            "code_examples": row[3],
            "embedding_dim": self._dimension,
            "hnsw_ef_search": self.hnsw_ef_search,
            "pool": {
                "size": pool.get("pool_size", 0),
                "available": pool.get("pool_available", 0),
                "max": self._pool.max_size,
            },
        }
