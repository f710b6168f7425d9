from __future__ import annotations

from crawlrag.config import Settings
from crawlrag.store.base import Store, StoreError


def open_store(settings: Settings) -> Store:
    """Open the store that DATABASE_URL names, creating or migrating its schema."""
    path = settings.sqlite_path
    if path is not None:
        from crawlrag.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    if settings.database_url.startswith(("postgresql://", "postgres://")):
        # Imported here so that SQLite users need neither psycopg nor psycopg_pool installed.
        from crawlrag.store.postgres import PostgresStore

        return PostgresStore(
            settings.database_url,
            pool_min_size=settings.pg_pool_min_size,
            pool_max_size=settings.pg_pool_max_size,
            hnsw_ef_search=settings.pg_hnsw_ef_search,
        )
    raise StoreError(f"unsupported DATABASE_URL {settings.database_url!r}")


def migrate_store(settings: Settings) -> int:
    """Create or upgrade the schema of the store DATABASE_URL names; returns the schema version."""
    path = settings.sqlite_path
    if path is not None:
        from crawlrag.store.sqlite import SQLiteStore

        store = SQLiteStore(path)  # opening migrates
        try:
            return store.schema_version
        finally:
            store.close()
    if settings.database_url.startswith(("postgresql://", "postgres://")):
        from crawlrag.store.postgres_schema import migrate

        return migrate(settings.database_url)
    raise StoreError(f"unsupported DATABASE_URL {settings.database_url!r}")
