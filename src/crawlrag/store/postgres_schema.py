"""PostgreSQL schema: numbered migrations recorded in `crawlrag_schema`, and the embedding dimension.

Every object is created unqualified, so it lands in the first schema of the connection's search_path: several
crawlrag databases can share one PostgreSQL database by giving each its own schema
(`?options=-csearch_path%3Dteam_a,public`). The `vector` type must be visible on that search_path.

The embedding columns are created as untyped `vector` and get their dimension (`vector(N)`) at the first
`ensure_source`, because only then is the embedder's dimension known; an HNSW index needs typed columns, so it
is created at the same moment, on the still empty tables (HNSW needs no training data, unlike IVFFlat, so it
stays useful however far the table grows).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors, sql

from crawlrag.store.base import EmbeddingMismatchError, StoreError

log = logging.getLogger(__name__)

# One key for every schema change (migrations, dimension changes), across all crawlrag processes.
SCHEMA_LOCK_KEY = 0x63726177  # "craw"
# HNSW indexes of the `vector` type support at most 2000 dimensions; wider embeddings are searched exactly.
HNSW_MAX_DIMENSIONS = 2000
VECTOR_TABLES = ("crawled_pages", "code_examples")


def _search_text(column: str) -> str:
    """Index text with punctuation turned into spaces, the way `keyword_terms` splits a query.

    Without this the parser keeps `os.scandir` or `a/b.py` as one host or file token, which a query for the
    words `os` and `scandir` would never match.
    """
    return f"to_tsvector('english', regexp_replace({column}, '[[:punct:]]+', ' ', 'g'))"


MIGRATIONS: list[str] = [
    # 1: the initial schema. Table and column names follow upstream's crawled_pages / code_examples / sources.
    f"""
    CREATE TABLE sources (
        source_id text PRIMARY KEY,
        summary text NOT NULL DEFAULT '',
        embedding_model text,
        embedding_dim integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE pages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        url text NOT NULL UNIQUE,
        source_id text NOT NULL REFERENCES sources (source_id) ON DELETE CASCADE,
        title text NOT NULL DEFAULT '',
        markdown text NOT NULL,
        content_hash text NOT NULL,
        word_count integer NOT NULL DEFAULT 0,
        chunk_count integer NOT NULL DEFAULT 0,
        etag text,
        last_modified text,
        crawled_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX pages_source_id ON pages (source_id);
    CREATE TABLE crawled_pages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        page_id bigint NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
        source_id text NOT NULL,
        url text NOT NULL,
        chunk_number integer NOT NULL,
        title text NOT NULL DEFAULT '',
        headings text NOT NULL DEFAULT '',
        content text NOT NULL,
        content_hash text NOT NULL,
        embed_hash text NOT NULL,
        embedding_model text NOT NULL,
        char_count integer NOT NULL,
        word_count integer NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{{}}',
        embedding vector NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        -- Weights: headings A, title B, body D; keyword search ranks them 3 : 2 : 1 like the SQLite store.
        search_text tsvector GENERATED ALWAYS AS (
            setweight({_search_text("headings")}, 'A') || setweight({_search_text("title")}, 'B')
            || setweight({_search_text("content")}, 'D')
        ) STORED,
        UNIQUE (page_id, chunk_number)
    );
    -- Keep typical rows (embedding + text + tsvector, 4-5 kB) whole in the heap: out-of-line TOAST would cost a
    -- lookup per row for every keyword match ranked and every hit returned.
    ALTER TABLE crawled_pages SET (toast_tuple_target = 8160);
    CREATE INDEX crawled_pages_source_id ON crawled_pages (source_id);
    CREATE INDEX crawled_pages_embed_hash ON crawled_pages (embed_hash);
    CREATE INDEX crawled_pages_search_text ON crawled_pages USING gin (search_text);
    CREATE TABLE code_examples (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        page_id bigint NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
        source_id text NOT NULL,
        url text NOT NULL,
        chunk_number integer NOT NULL,
        language text NOT NULL DEFAULT '',
        content text NOT NULL,
        summary text NOT NULL DEFAULT '',
        context_before text NOT NULL DEFAULT '',
        context_after text NOT NULL DEFAULT '',
        headings text NOT NULL DEFAULT '',
        metadata jsonb NOT NULL DEFAULT '{{}}',
        embedding vector NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        -- Weights: summary A, headings B, code D; ranked 2 : 2 : 1 like the SQLite store.
        search_text tsvector GENERATED ALWAYS AS (
            setweight({_search_text("summary")}, 'A') || setweight({_search_text("headings")}, 'B')
            || setweight({_search_text("content")}, 'D')
        ) STORED
    );
    ALTER TABLE code_examples SET (toast_tuple_target = 8160);
    CREATE INDEX code_examples_page_id ON code_examples (page_id);
    CREATE INDEX code_examples_source_id ON code_examples (source_id);
    CREATE INDEX code_examples_search_text ON code_examples USING gin (search_text);
    CREATE TABLE crawl_jobs (
        job_id text PRIMARY KEY,
        url text NOT NULL,
        options jsonb NOT NULL DEFAULT '{{}}',
        status text NOT NULL,
        pages_done integer NOT NULL DEFAULT 0,
        pages_failed integer NOT NULL DEFAULT 0,
        pages_skipped integer NOT NULL DEFAULT 0,
        pages_total integer,
        chunks_stored integer NOT NULL DEFAULT 0,
        error text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX crawl_jobs_created_at ON crawl_jobs (created_at);
    CREATE INDEX crawl_jobs_unfinished ON crawl_jobs (status) WHERE status IN ('queued', 'running');
    """,
    # page kinds (content, index, changelog) and section anchors; chunks repeat their page's kind for filters
    """
    ALTER TABLE pages ADD COLUMN kind text NOT NULL DEFAULT 'content';
    ALTER TABLE crawled_pages ADD COLUMN anchor text NOT NULL DEFAULT '';
    ALTER TABLE crawled_pages ADD COLUMN kind text NOT NULL DEFAULT 'content';
    """,
    # pipeline: the index settings each page was processed with, and who ran a job when
    """
    ALTER TABLE pages ADD COLUMN index_fingerprint text;
    ALTER TABLE crawl_jobs ADD COLUMN worker text;
    ALTER TABLE crawl_jobs ADD COLUMN started_at timestamptz;
    ALTER TABLE crawl_jobs ADD COLUMN finished_at timestamptz;
    """,
    # scale-out: crawl_jobs is the shared job queue; the holder renews its lease, cancel reaches it through the row
    """
    ALTER TABLE crawl_jobs ADD COLUMN lease_expires_at timestamptz;
    ALTER TABLE crawl_jobs ADD COLUMN cancel_requested text;
    ALTER TABLE crawl_jobs ADD COLUMN attempts integer NOT NULL DEFAULT 0;
    CREATE INDEX crawl_jobs_claimable ON crawl_jobs (created_at)
        WHERE status IN ('queued', 'running') AND cancel_requested IS NULL;
    """,
    # versions: sources are (site, version), existing ones `latest` (whose key is the site: no key changes);
    # one URL may be stored once per source key, so a page is (source_id, url)
    """
    ALTER TABLE sources ADD COLUMN site text NOT NULL DEFAULT '', ADD COLUMN version text NOT NULL DEFAULT 'latest';
    UPDATE sources SET site = source_id;
    CREATE UNIQUE INDEX sources_site_version ON sources (site, version);
    ALTER TABLE pages DROP CONSTRAINT pages_url_key;
    ALTER TABLE pages ADD CONSTRAINT pages_source_id_url_key UNIQUE (source_id, url);
    CREATE INDEX pages_url ON pages (url);
    """,
    # refresh: the crawls each source was made with (a refresh runs them again) and its refresh schedule
    """
    CREATE TABLE source_crawls (
        source_id text NOT NULL REFERENCES sources (source_id) ON DELETE CASCADE,
        url text NOT NULL,
        options jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source_id, url)
    );
    ALTER TABLE sources ADD COLUMN refresh_interval_hours double precision;
    ALTER TABLE sources ADD COLUMN refreshed_at timestamptz;
    -- a page's links when it was stored: a page that did not change (304) still leads on
    ALTER TABLE pages ADD COLUMN links jsonb;
    """,
]


def _ensure_extension(conn: psycopg.Connection[Any]) -> None:
    """Create pgvector if needed and check that its type is reachable through the search_path."""
    schema = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
    ).fetchone()
    if schema is None:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except errors.InsufficientPrivilege as exc:
            raise StoreError(
                "the pgvector extension is not enabled in this database and this user may not enable it: "
                "ask an administrator to run `CREATE EXTENSION vector;` in it"
            ) from exc
        except (errors.UndefinedFile, errors.FeatureNotSupported) as exc:
            raise StoreError(
                f"pgvector is not installed on the PostgreSQL server ({exc}): install it (see docs/postgres.md)"
            ) from exc
    elif conn.execute("SELECT to_regtype('vector') IS NULL").fetchone() == (True,):
        raise StoreError(
            f"pgvector is installed in schema {schema[0]!r}, which is not on the search_path: add it, "
            f"e.g. ?options=-csearch_path%3Dpublic,{schema[0]} in DATABASE_URL"
        )


def migrate_connection(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to the latest version on an open autocommit connection; return that version."""
    with conn.transaction():
        # Two servers starting at once must not both run the same migration.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        _ensure_extension(conn)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS crawlrag_schema"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM crawlrag_schema").fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the database schema is at version {version}, newer than this crawlrag knows "
                f"({len(MIGRATIONS)}): upgrade crawlrag"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying PostgreSQL migration %d", number)
            conn.execute(script)
            conn.execute("INSERT INTO crawlrag_schema (version) VALUES (%s)", (number,))
    return len(MIGRATIONS)


def connect(url: str, *, connect_timeout: float = 10.0) -> psycopg.Connection[Any]:
    """One autocommit connection, with connection failures turned into a readable StoreError."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(connect_timeout)))
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {display_url(url)}: {exc}".strip()) from exc


def migrate(url: str) -> int:
    """Create or upgrade crawlrag's schema in the database `url` names; idempotent. Returns the schema version."""
    with connect(url) as conn:
        try:
            return migrate_connection(conn)
        except psycopg.Error as exc:
            raise StoreError(f"migrating {display_url(url)} failed: {exc}") from exc


def display_url(url: str) -> str:
    """The URL without its password, for messages and stats."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def vector_type_oid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regtype('vector')::oid").fetchone()
    if row is None or row[0] is None:
        raise StoreError("the pgvector type `vector` is not visible on the search_path")
    return int(row[0])


def column_dimension(conn: psycopg.Connection[Any]) -> int | None:
    """The dimension the embedding columns are typed with, or None before the first source."""
    row = conn.execute(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'crawled_pages'::regclass AND attname = 'embedding'"
    ).fetchone()
    return int(row[0]) if row and row[0] > 0 else None


def set_dimension(conn: psycopg.Connection[Any], dimension: int, model: str) -> None:
    """Type the embedding columns as vector(dimension) and index them; call inside a transaction.

    Refuses (EmbeddingMismatchError) when vectors of another dimension are stored: one database holds one
    dimension, so that every row can be compared with every query and the HNSW index covers all of them.
    """
    if not 1 <= dimension <= 16_000:
        raise StoreError(f"embedding dimension {dimension} is outside pgvector's range 1..16000")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
    current = column_dimension(conn)
    if current == dimension:
        return
    if current is not None:
        users = [
            row[0]
            for row in conn.execute(
                "SELECT source_id FROM sources WHERE embedding_dim IS DISTINCT FROM %s ORDER BY source_id LIMIT 6",
                (dimension,),
            )
        ]
        stored = conn.execute(
            "SELECT EXISTS (SELECT FROM crawled_pages) OR EXISTS (SELECT FROM code_examples)"
        ).fetchone()
        if users or (stored and stored[0]):
            named = ", ".join(users[:5]) + (", ..." if len(users) > 5 else "")
            raise EmbeddingMismatchError(
                f"this PostgreSQL database stores {current}-dimension embeddings (sources: {named or 'none'}) but "
                f"the configured embedding model {model} makes {dimension}-dimension ones: set EMBEDDING_MODEL "
                f"back, use another database or schema, or delete those sources first"
            )
    # The tables are empty here, so retyping and building the indexes is instant.
    retype_columns(conn, dimension)


def retype_columns(conn: psycopg.Connection[Any], dimension: int) -> None:
    """Type the embedding columns as vector(dimension) (every stored row must have it) and rebuild HNSW."""
    for table in VECTOR_TABLES:
        index = sql.Identifier(f"{table}_embedding_hnsw")
        name = sql.Identifier(table)
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index))
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN embedding TYPE vector({})").format(name, sql.Literal(dimension))
        )
        # MAIN keeps vectors inline in the row (not in TOAST), so exact filtered scans read no extra pages.
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN embedding SET STORAGE MAIN").format(name))
        if dimension <= HNSW_MAX_DIMENSIONS:
            conn.execute(
                sql.SQL(
                    "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                ).format(index, name)
            )
        else:
            log.warning("%d-dimension embeddings are too wide for an HNSW index: searches scan all rows", dimension)
