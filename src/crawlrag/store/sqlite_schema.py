"""SQLite schema, applied by numbered migrations recorded in `PRAGMA user_version`."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

# A migration is a script, or a function that writes the script from the schema it finds (for table rebuilds,
# which must carry over whatever columns and indexes earlier migrations added).
Migration = str | Callable[[sqlite3.Connection], str]


def _pages_keyed_by_source(conn: sqlite3.Connection) -> str:
    """Versions: one URL may be stored once per source key, so a page is (source_id, url), not url alone.

    SQLite cannot drop a column's UNIQUE, so `pages` is rebuilt (page ids kept, so chunks, code examples and
    their FTS rows stay as they are); sources gain their site and version, and existing ones are version
    `latest`, whose key is the site itself: no stored key changes.
    """
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'pages'").fetchone()
    create, replaced = re.subn(r"\burl TEXT NOT NULL UNIQUE\b", "url TEXT NOT NULL", row[0], count=1)
    if not replaced:
        raise sqlite3.DatabaseError("unexpected pages table: its url column is not `url TEXT NOT NULL UNIQUE`")
    body = create[create.index("(") : create.rindex(")")]
    extras = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'pages' AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL"
        )
    ]
    return "\n".join(
        [
            "ALTER TABLE sources ADD COLUMN site TEXT NOT NULL DEFAULT '';",
            "ALTER TABLE sources ADD COLUMN version TEXT NOT NULL DEFAULT 'latest';",
            "UPDATE sources SET site = source_id;",
            "CREATE UNIQUE INDEX sources_site_version ON sources(site, version);",
            f"CREATE TABLE pages_rebuilt {body},\n    UNIQUE (source_id, url)\n);",
            "INSERT INTO pages_rebuilt SELECT * FROM pages;",
            "DROP TABLE pages;",
            "ALTER TABLE pages_rebuilt RENAME TO pages;",
            *(f"{sql};" for sql in extras),
            "CREATE INDEX pages_url ON pages(url);",
        ]
    )


MIGRATIONS: list[Migration] = [
    # 1: the initial schema
    """
    CREATE TABLE sources (
        source_id TEXT PRIMARY KEY,
        summary TEXT NOT NULL DEFAULT '',
        embedding_model TEXT,
        embedding_dim INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE pages (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        source_id TEXT NOT NULL REFERENCES sources(source_id) ON DELETE CASCADE,
        title TEXT NOT NULL DEFAULT '',
        markdown TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        word_count INTEGER NOT NULL DEFAULT 0,
        chunk_count INTEGER NOT NULL DEFAULT 0,
        etag TEXT,
        last_modified TEXT,
        crawled_at TEXT NOT NULL
    );
    CREATE INDEX pages_source ON pages(source_id);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        page_id INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
        source_id TEXT NOT NULL,
        url TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        headings TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        embed_hash TEXT NOT NULL,
        embedding_model TEXT NOT NULL,
        char_count INTEGER NOT NULL,
        word_count INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        UNIQUE (page_id, chunk_index)
    );
    CREATE INDEX chunks_page ON chunks(page_id);
    CREATE INDEX chunks_embed_hash ON chunks(embed_hash);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        content, headings, title, content='chunks', content_rowid='id', tokenize='porter unicode61'
    );
    CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, content, headings, title) VALUES (new.id, new.content, new.headings, new.title);
    END;
    CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, content, headings, title)
        VALUES ('delete', old.id, old.content, old.headings, old.title);
    END;
    CREATE TABLE code_examples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        page_id INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
        source_id TEXT NOT NULL,
        url TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        language TEXT NOT NULL DEFAULT '',
        code TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        context_before TEXT NOT NULL DEFAULT '',
        context_after TEXT NOT NULL DEFAULT '',
        headings TEXT NOT NULL DEFAULT '',
        embedding BLOB NOT NULL
    );
    CREATE INDEX code_examples_page ON code_examples(page_id);
    CREATE VIRTUAL TABLE code_fts USING fts5(
        code, summary, headings, content='code_examples', content_rowid='id', tokenize='porter unicode61'
    );
    CREATE TRIGGER code_fts_insert AFTER INSERT ON code_examples BEGIN
        INSERT INTO code_fts(rowid, code, summary, headings) VALUES (new.id, new.code, new.summary, new.headings);
    END;
    CREATE TRIGGER code_fts_delete AFTER DELETE ON code_examples BEGIN
        INSERT INTO code_fts(code_fts, rowid, code, summary, headings)
        VALUES ('delete', old.id, old.code, old.summary, old.headings);
    END;
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        options TEXT NOT NULL,
        status TEXT NOT NULL,
        pages_done INTEGER NOT NULL DEFAULT 0,
        pages_failed INTEGER NOT NULL DEFAULT 0,
        pages_skipped INTEGER NOT NULL DEFAULT 0,
        pages_total INTEGER,
        chunks_stored INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX jobs_created ON jobs(created_at);
    """,
    # page kinds (content, index, changelog) and section anchors; chunks repeat their page's kind for filters
    """
    ALTER TABLE pages ADD COLUMN kind TEXT NOT NULL DEFAULT 'content';
    ALTER TABLE chunks ADD COLUMN anchor TEXT NOT NULL DEFAULT '';
    ALTER TABLE chunks ADD COLUMN kind TEXT NOT NULL DEFAULT 'content';
    """,
    # pipeline: the index settings each page was processed with, and who ran a job when
    """
    ALTER TABLE pages ADD COLUMN index_fingerprint TEXT;
    ALTER TABLE jobs ADD COLUMN worker TEXT;
    ALTER TABLE jobs ADD COLUMN started_at TEXT;
    ALTER TABLE jobs ADD COLUMN finished_at TEXT;
    """,
    # versions: sources are (site, version); pages are (source_id, url)
    _pages_keyed_by_source,
    # refresh: the crawls each source was made with (a refresh runs them again) and its refresh schedule
    """
    CREATE TABLE source_crawls (
        source_id TEXT NOT NULL REFERENCES sources(source_id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        options TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source_id, url)
    );
    ALTER TABLE sources ADD COLUMN refresh_interval_hours REAL;
    ALTER TABLE sources ADD COLUMN refreshed_at TEXT;
    -- a page's links (JSON list) when it was stored: a page that did not change (304) still leads on
    ALTER TABLE pages ADD COLUMN links TEXT;
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; safe to run on every open. Returns the version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version >= len(MIGRATIONS):
        return len(MIGRATIONS)
    # A table rebuild drops the old table: with foreign keys on, that would cascade to its chunks. The pragma
    # is a no-op inside a transaction, so it is switched around the migrations (SQLite's documented procedure).
    foreign_keys = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            script = migration(conn) if callable(migration) else migration
            # executescript commits first; the version bump inside the script keeps the step atomic.
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
            except BaseException:
                if conn.in_transaction:  # a half-applied step must not be committed by the next statement
                    conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    return len(MIGRATIONS)
