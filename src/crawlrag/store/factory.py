from __future__ import annotations

from crawlrag.config import Settings
from crawlrag.store.base import Store, StoreError


def open_store(settings: Settings) -> Store:
    """Open the store that DATABASE_URL names, creating or migrating its schema."""
    path = settings.sqlite_path
    if path is not None:
        from crawlrag.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    raise StoreError(f"unsupported DATABASE_URL {settings.database_url!r}")
