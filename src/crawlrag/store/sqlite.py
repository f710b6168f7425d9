"""The embedded default store: one SQLite file (WAL), FTS5 for keywords, exact numpy search for vectors."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from crawlrag.models import (
    CodeHit,
    CrawlJob,
    DeletedCounts,
    SearchHit,
    SourceInfo,
    SourceVersion,
    StoredPage,
    utcnow,
)
from crawlrag.sources.versions import split_source_key
from crawlrag.store import sqlite_fts, sqlite_jobs, sqlite_refresh, sqlite_reindex, sqlite_write
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
from crawlrag.store.query_terms import TermShares, fts5_query, keyword_terms
from crawlrag.store.sqlite_catch_up import catch_up
from crawlrag.store.sqlite_errors import begin_immediate, translated_errors
from crawlrag.store.sqlite_readers import ReaderPool, SharedReader
from crawlrag.store.sqlite_schema import migrate
from crawlrag.store.vector_index import VectorIndex

log = logging.getLogger(__name__)

_CHUNK_COLUMNS = "c.id, c.url, c.source_id, c.title, c.headings, c.chunk_index, c.content, c.anchor, c.kind"
_CODE_COLUMNS = "e.id, e.url, e.source_id, e.language, e.code, e.summary, e.headings"
# SQLite's busy handler does not cover every SQLITE_BUSY (e.g. while another connection recovers the WAL), so
# taking the write lock is retried a few times with backoff before the error reaches the user.


def _chunk_hit(row: tuple[Any, ...]) -> SearchHit:
    """A hit from the first columns of a row selected with _CHUNK_COLUMNS."""
    return SearchHit(*row[:7], anchor=row[7], kind=row[8])


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _page_where(url: str, source_id: str | None) -> tuple[str, tuple[str, ...]]:
    """The page (source_id, url), or with no source the URL's most recently crawled page of any version."""
    if source_id is not None:
        return "source_id = ? AND url = ?", (source_id, url)
    return "url = ? ORDER BY crawled_at DESC, id DESC LIMIT 1", (url,)


class SQLiteStore:
    """One writer and many readers; safe to share between threads of one process and with other processes."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the database folder {self.path.parent}: {exc}") from exc
        # Writes, reads and catch-ups use their own connections: a writer waiting for another process's write
        # lock (BEGIN IMMEDIATE retries for up to busy_timeout) must never hold up a search or /health, and two
        # reads (the two sides of a hybrid search) run at once. WAL readers see the last commit and never wait
        # for writers.
        self._lock = threading.RLock()  # the write connection
        # Catching up with other connections' commits and applying our own commit to the in-memory matrices must
        # not interleave (a catch-up reading ids before our commit would drop the rows we just added).
        # Lock order: write, index.
        self._index_lock = threading.RLock()
        with translated_errors(self.path):
            self._conn = self._connect(busy_timeout_ms)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self.schema_version = migrate(self._conn)
            self._readers: ReaderPool | SharedReader
            if str(path) == ":memory:":  # a second connection would open another, empty database
                self._syncer = self._conn
                self._index_lock = self._lock
                self._readers = SharedReader(self._conn, self._lock)
            else:
                self._syncer = self._connect(busy_timeout_ms)
                self._readers = ReaderPool(partial(self._connect, busy_timeout_ms))
            # PRAGMA data_version changes when another connection commits, never for the connection's own commits.
            self._write_version = self._data_version_of(self._conn)
        self._chunk_index = VectorIndex()
        self._code_index = VectorIndex()
        self._data_version = -1
        self._term_shares_cache = TermShares()
        self._sync_indexes()

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @staticmethod
    def _data_version_of(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with translated_errors(self.path), self._readers.borrow() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, translated_errors(self.path):
            begin_immediate(self._conn)
            try:
                # Holding the write lock, catch up with other connections' commits first, so rows this write
                # replaces are known to the in-memory matrices. Our own commits are applied to the matrices as
                # they happen, so a run of writes by this store alone never reads the tables back.
                version = self._data_version_of(self._conn)
                if version != self._write_version:
                    with self._index_lock:
                        self._catch_up(self._conn)
                    self._write_version = version
                yield self._conn
            except BaseException:
                # SQLite rolls back by itself on some errors (SQLITE_FULL, I/O errors); a second ROLLBACK would
                # fail and hide the error that matters.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock, self._index_lock:
            self._readers.close()
            if self._syncer is not self._conn:
                self._syncer.close()
            self._conn.close()

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        catch_up(conn, "chunks", self._chunk_index, "kind")
        catch_up(conn, "code_examples", self._code_index, "'content'")

    def _sync_indexes(self) -> None:
        """Bring the in-memory vector matrices in line with rows that other connections added or removed."""
        with self._index_lock, translated_errors(self.path):
            conn = self._syncer
            if conn is self._conn:  # in memory: nobody else commits
                if self._data_version == -1:
                    self._catch_up(conn)
                    self._data_version = 0
                return
            version = self._data_version_of(conn)
            if version == self._data_version:
                return
            conn.execute("BEGIN")  # one snapshot for every row read and the version recorded
            try:
                self._catch_up(conn)
                # Read inside the snapshot the rows came from: a commit after it must count as new next time.
                version = self._data_version_of(conn)
            finally:
                conn.execute("COMMIT")
            self._data_version = version

    # --- sources ------------------------------------------------------------------------------------------------
    def ensure_source(self, source_id: str, embedding_model: str, embedding_dim: int) -> None:
        now = utcnow().isoformat()
        with self._write() as conn:
            row = conn.execute(
                "SELECT embedding_model, embedding_dim FROM sources WHERE source_id = ?", (source_id,)
            ).fetchone()
            if row is None:
                site, version = split_source_key(source_id)
                conn.execute(
                    "INSERT INTO sources (source_id, site, version, embedding_model, embedding_dim, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (source_id, site, version, embedding_model, embedding_dim, now, now),
                )
            elif row[0] and (row[0], row[1]) != (embedding_model, embedding_dim):
                raise EmbeddingMismatchError(
                    f"source {source_id!r} was indexed with {row[0]} ({row[1]} dimensions) but the configured "
                    f"embedding model is {embedding_model} ({embedding_dim} dimensions): set EMBEDDING_MODEL back "
                    f"or re-embed it with `crawlrag reindex --source {source_id}`"
                )

    def source_embedding(self, source_id: str) -> tuple[str, int] | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT embedding_model, embedding_dim FROM sources WHERE source_id = ?", (source_id,)
            ).fetchone()
        return (row[0], int(row[1])) if row and row[0] else None

    def set_source_summary(self, source_id: str, summary: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE sources SET summary = ?, updated_at = ? WHERE source_id = ?",
                (summary, utcnow().isoformat(), source_id),
            )

    def list_sources(self) -> list[SourceInfo]:
        with self._read() as conn:
            rows = conn.execute(
                """
                SELECT s.source_id, s.summary, s.embedding_model, s.embedding_dim, s.created_at,
                       (SELECT COUNT(*) FROM pages p WHERE p.source_id = s.source_id),
                       (SELECT COALESCE(SUM(chunk_count), 0) FROM pages p WHERE p.source_id = s.source_id),
                       (SELECT COALESCE(SUM(word_count), 0) FROM pages p WHERE p.source_id = s.source_id),
                       (SELECT COUNT(*) FROM code_examples e WHERE e.source_id = s.source_id),
                       (SELECT MAX(crawled_at) FROM pages p WHERE p.source_id = s.source_id),
                       s.site, s.version
                FROM sources s ORDER BY s.source_id
                """
            ).fetchall()
        return [
            SourceInfo(
                source_id=row[0],
                summary=row[1],
                embedding_model=row[2],
                embedding_dim=row[3],
                created_at=_ts(row[4]),
                pages=row[5],
                chunks=row[6],
                words=row[7],
                code_examples=row[8],
                last_crawled=_ts(row[9]),
                site=row[10],
                version=row[11],
            )
            for row in rows
        ]

    def source_versions(self) -> list[SourceVersion]:
        with self._read() as conn:
            rows = conn.execute("SELECT source_id, site, version FROM sources ORDER BY source_id").fetchall()
        return [SourceVersion(*row) for row in rows]

    def delete_source(self, source_id: str) -> int:
        deleted = self.delete_sources([source_id]).get(source_id)
        return deleted.pages if deleted else 0

    def delete_sources(self, source_ids: Collection[str]) -> dict[str, DeletedCounts]:
        keys = source_filter(source_ids) or ()
        counts: dict[str, DeletedCounts] = {}
        chunk_ids: list[int] = []
        code_ids: list[int] = []
        with self._write() as conn:
            for key in keys:
                row = conn.execute("SELECT site, version FROM sources WHERE source_id = ?", (key,)).fetchone()
                if row is None:
                    continue
                chunks = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE source_id = ?", (key,))]
                code = [r[0] for r in conn.execute("SELECT id FROM code_examples WHERE source_id = ?", (key,))]
                # Chunks and code examples cascade from their pages; the FTS rows go with them (delete triggers).
                pages = conn.execute("DELETE FROM pages WHERE source_id = ?", (key,)).rowcount
                conn.execute("DELETE FROM sources WHERE source_id = ?", (key,))
                counts[key] = DeletedCounts(row[0], row[1], int(pages), len(chunks), len(code))
                chunk_ids += chunks
                code_ids += code
        with self._index_lock:  # after the commit, as write_page does
            self._chunk_index.remove(chunk_ids)
            self._code_index.remove(code_ids)
        self._term_shares_cache.clear()
        return counts

    def source_texts(self, source_id: str) -> SourceTexts:
        with self._read() as conn:
            return sqlite_reindex.source_texts(conn, source_id)

    def replace_embeddings(self, model: str, dimension: int, updates: Sequence[SourceEmbeddings]) -> None:
        for update in updates:
            update.check(dimension)  # before the transaction, as write_page does
        with self._write() as conn:
            sqlite_reindex.replace_embeddings(conn, model, dimension, updates, utcnow().isoformat())
        # Rows moved to new ids and possibly a new dimension: rebuild the matrices from the committed rows.
        with self._lock, self._index_lock:
            self._chunk_index = VectorIndex()
            self._code_index = VectorIndex()
            self._data_version = -1
            self._sync_indexes()

    # --- pages --------------------------------------------------------------------------------------------------
    def get_page(self, url: str, source_id: str | None = None) -> StoredPage | None:
        where, params = _page_where(url, source_id)
        with self._read() as conn:
            row = conn.execute(
                "SELECT url, source_id, title, content_hash, chunk_count, etag, last_modified, crawled_at, kind,"
                f" index_fingerprint, links FROM pages WHERE {where}",
                params,
            ).fetchone()
        if row is None:
            return None
        links = tuple(json.loads(row[10])) if row[10] is not None else None
        return StoredPage(
            *row[:7], crawled_at=datetime.fromisoformat(row[7]), kind=row[8], fingerprint=row[9], links=links
        )

    def page_markdown(self, url: str, source_id: str | None = None) -> str | None:
        where, params = _page_where(url, source_id)
        with self._read() as conn:
            row = conn.execute(f"SELECT markdown FROM pages WHERE {where}", params).fetchone()
        return row[0] if row else None

    def page_dates(self, pages: Collection[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        found: dict[tuple[str, str], datetime] = {}
        wanted = list(dict.fromkeys(pages))
        with self._read() as conn:
            for start in range(0, len(wanted), 400):
                batch = wanted[start : start + 400]
                marks = " OR ".join("(source_id = ? AND url = ?)" for _ in batch)
                params = [value for pair in batch for value in pair]
                for source_id, url, crawled in conn.execute(
                    f"SELECT source_id, url, crawled_at FROM pages WHERE {marks}", params
                ):
                    found[(source_id, url)] = datetime.fromisoformat(crawled)
        return found

    def write_page(self, write: PageWrite) -> None:
        page = write.page
        if len(write.chunks) != len(write.embeddings) or len(write.chunks) != len(write.embed_hashes):
            raise ValueError("chunks, embeddings and embed_hashes must have the same length")
        model = self.source_embedding(page.source_id)
        model_name = model[0] if model else ""
        # Checked before the transaction: a vector the in-memory index would refuse must not reach the table.
        for name, vectors in (("chunk", write.embeddings), ("code example", write.code_embeddings)):
            if model and vectors is not None and len(vectors) and np.asarray(vectors).shape[1] != model[1]:
                raise StoreError(
                    f"{name} embeddings have {np.asarray(vectors).shape[1]} dimensions but source "
                    f"{page.source_id!r} uses {model[1]}"
                )
        with self._write() as conn:
            written = sqlite_write.replace_page(conn, write, model_name)
        code_vectors = write.code_embeddings if write.code_embeddings is not None else np.zeros((0, 0))
        # The matrices change only after the commit, so a failed write leaves search exactly as it was.
        with self._index_lock:
            self._chunk_index.remove(written.old_chunk_ids)
            self._code_index.remove(written.old_code_ids)
            self._chunk_index.add(
                written.chunk_ids,
                write.embeddings,
                [page.source_id] * len(written.chunk_ids),
                [page.kind] * len(written.chunk_ids),
            )
            if written.code_ids:
                self._code_index.add(written.code_ids, code_vectors, [page.source_id] * len(written.code_ids))

    def touch_page(self, url: str, source_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE pages SET crawled_at = ? WHERE source_id = ? AND url = ?",
                (utcnow().isoformat(), source_id, url),
            )

    def embeddings_for(self, embed_hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(embed_hashes))
        with self._read() as conn:
            for start in range(0, len(unique), 500):
                batch = unique[start : start + 500]
                marks = ",".join("?" * len(batch))
                for embed_hash, blob in conn.execute(
                    f"SELECT embed_hash, embedding FROM chunks WHERE embedding_model = ? AND embed_hash IN ({marks})",
                    (model, *batch),
                ):
                    found[embed_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    # --- refresh ------------------------------------------------------------------------------------------------
    def record_crawl(
        self, source_id: str, url: str, options: Mapping[str, Any], refresh_interval_hours: float | None = None
    ) -> None:
        with self._write() as conn:
            sqlite_refresh.record_crawl(conn, source_id, url, options, refresh_interval_hours)

    def source_crawls(self, source_id: str) -> list[SourceCrawl]:
        with self._read() as conn:
            return sqlite_refresh.source_crawls(conn, source_id)

    def refresh_schedule(self) -> list[RefreshSchedule]:
        with self._read() as conn:
            return sqlite_refresh.refresh_schedule(conn)

    def mark_refreshed(self, source_id: str) -> None:
        with self._write() as conn:
            sqlite_refresh.mark_refreshed(conn, source_id)

    def source_page_urls(self, source_id: str) -> list[str]:
        with self._read() as conn:
            return sqlite_refresh.source_page_urls(conn, source_id)

    def delete_pages(self, source_id: str, urls: Sequence[str]) -> int:
        if not urls:
            return 0
        with self._write() as conn:
            deleted, chunk_ids, code_ids = sqlite_refresh.delete_pages(conn, source_id, urls)
        with self._index_lock:  # after the commit, as for write_page
            self._chunk_index.remove(chunk_ids)
            self._code_index.remove(code_ids)
        self._term_shares_cache.clear()
        return deleted

    # --- search -------------------------------------------------------------------------------------------------
    def _rows_by_id(self, table: str, columns: str, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._read() as conn:
            rows = conn.execute(f"SELECT {columns} FROM {table} WHERE id IN ({marks})", list(ids))
            return {row[0]: row for row in rows}

    def _nearest(
        self,
        index: VectorIndex,
        table: str,
        columns: str,
        query: np.ndarray,
        limit: int,
        sources: Collection[str] | None,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[tuple[Any, ...], float]]:
        """Rows of the nearest vectors with their similarity; a row deleted meanwhile is left out."""
        self._sync_indexes()
        ranked = index.search(query, limit, source_filter(sources), kinds)
        rows = self._rows_by_id(table, columns, [row_id for row_id, _ in ranked])
        return [(rows[row_id], similarity) for row_id, similarity in ranked if row_id in rows]

    def vector_search(
        self,
        query: np.ndarray,
        limit: int,
        sources: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
    ) -> list[SearchHit]:
        hits = []
        for row, similarity in self._nearest(
            self._chunk_index, "chunks c", _CHUNK_COLUMNS, query, limit, sources, kinds
        ):
            hit = _chunk_hit(row)
            hit.score = hit.similarity = similarity
            hits.append(hit)
        return hits

    def code_vector_search(
        self, query: np.ndarray, limit: int, sources: Collection[str] | None = None
    ) -> list[CodeHit]:
        hits = []
        nearest = self._nearest(self._code_index, "code_examples e", _CODE_COLUMNS, query, limit, sources)
        for row, similarity in nearest:
            hit = CodeHit(*row)
            hit.score = hit.similarity = similarity
            hits.append(hit)
        return hits

    def _term_shares(self, table: str, text: str) -> tuple[dict[str, float], int]:
        """The share of `table`'s rows holding each single term of `text`, and its number of rows."""
        terms, _ = keyword_terms(text)
        with self._read() as conn:
            total = conn.execute(f"SELECT count(*) FROM {table}_docsize").fetchone()[0]

            def count(term: str) -> int:
                return int(
                    conn.execute(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", (f'"{term}"',)).fetchone()[0]
                )

            return self._term_shares_cache.shares(table, terms, total, count), total

    def _fts(
        self,
        table: str,
        alias: str,
        columns: str,
        query: str,
        limit: int,
        sources: Collection[str] | None,
        weights: str,
        kinds: Collection[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        source_ids = source_filter(sources)
        fts = fts5_query(query, *self._term_shares(table, query))
        if fts is None or limit <= 0 or (kinds is not None and not kinds) or source_ids == ():
            return []
        base = f"{'chunks' if table == 'chunks_fts' else 'code_examples'} {alias}"
        join, filters, params = "", "", []
        if source_ids is not None or kinds is not None:
            join = f" JOIN {base} ON {alias}.id = {table}.rowid"
        if source_ids is not None:
            filters += f" AND {alias}.source_id IN ({','.join('?' * len(source_ids))})"
            params.extend(source_ids)
        if kinds is not None:
            filters += f" AND {alias}.kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        with self._read() as conn:
            ranked = sqlite_fts.best_rows(conn, table, weights, fts, limit, join=join, filters=filters, params=params)
        # The hits' columns are read for the best rows alone, never for every row that matches.
        rows = self._rows_by_id(base, columns, [rowid for rowid, _ in ranked])
        return [(*rows[rowid], score) for rowid, score in ranked if rowid in rows]

    def keyword_search(
        self, query: str, limit: int, sources: Collection[str] | None = None, kinds: Collection[str] | None = None
    ) -> list[SearchHit]:
        # Headings and titles name what a chunk is about, so a match there counts more than one in the body.
        rows = self._fts("chunks_fts", "c", _CHUNK_COLUMNS, query, limit, sources, "1.0, 3.0, 2.0", kinds)
        hits = []
        for row in rows:
            hit = _chunk_hit(row)
            hit.score = hit.keyword_score = float(row[9])
            hits.append(hit)
        return hits

    def code_keyword_search(self, query: str, limit: int, sources: Collection[str] | None = None) -> list[CodeHit]:
        rows = self._fts("code_fts", "e", _CODE_COLUMNS, query, limit, sources, "1.0, 2.0, 2.0")
        hits = []
        for row in rows:
            hit = CodeHit(*row[:7])
            hit.score = hit.keyword_score = float(row[7])
            hits.append(hit)
        return hits

    # --- crawl jobs ---------------------------------------------------------------------------------------------
    def save_job(self, job: CrawlJob) -> None:
        job.updated_at = utcnow()
        with self._write() as conn:
            sqlite_jobs.save_job(conn, job)

    def get_job(self, job_id: str) -> CrawlJob | None:
        with self._read() as conn:
            return sqlite_jobs.get_job(conn, job_id)

    def list_jobs(self, limit: int = 50) -> list[CrawlJob]:
        with self._read() as conn:
            return sqlite_jobs.list_jobs(conn, limit)

    def interrupt_unfinished_jobs(self, alive: Callable[[str | None], bool] = lambda worker: False) -> int:
        with self._write() as conn:
            return sqlite_jobs.interrupt_unfinished_jobs(conn, alive)

    # --- health -------------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._read() as conn:
            counts = {
                table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("sources", "pages", "chunks", "code_examples")
            }
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "bytes": size,
            **counts,
            "vectors_in_memory": len(self._chunk_index),
        }
