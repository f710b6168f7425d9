"""Storage backends behind one protocol; `open_store` picks one from DATABASE_URL."""

from crawlrag.store.base import EmbeddingMismatchError, PageWrite, Store, StoreError
from crawlrag.store.factory import migrate_store, open_store

__all__ = ["EmbeddingMismatchError", "PageWrite", "Store", "StoreError", "migrate_store", "open_store"]
