"""Failures that are not one page's: when the embedder or the store is broken, every page would fail the same way.

Such a failure ends the job at once with one error naming the cause, instead of one failure per page.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from crawlrag.config import Settings
from crawlrag.embeddings import EmbeddingError
from crawlrag.store import StoreError

# Phrases of the store's own messages (crawlrag.store.sqlite_errors, postgres) for a store that cannot write at all.
_SYSTEMIC_STORE_TEXT = ("read-only", "readonly", "disk is full", "disk full", "cannot connect", "no space left")


class SystemicError(RuntimeError):
    """The job cannot go on: the embedder or the store is unusable. The message names the cause."""


def is_systemic(exc: BaseException) -> bool:
    if isinstance(exc, SystemicError | EmbeddingError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        return True
    if isinstance(exc, StoreError):
        cause = exc.__cause__
        if isinstance(cause, sqlite3.OperationalError) and "locked" not in str(cause).lower():
            text = str(cause).lower()
            if "readonly" in text or "full" in text or "disk i/o" in text:
                return True
        return any(phrase in str(exc).lower() for phrase in _SYSTEMIC_STORE_TEXT)
    return False


def systemic(exc: BaseException, what: str) -> SystemicError:
    return SystemicError(f"{what}: {exc}")


def missing_model_path(settings: Settings) -> str | None:
    """Why a local EMBEDDING_MODEL written as a path cannot load, found without importing the model libraries."""
    name = settings.embedding_model
    if settings.embedding_provider != "local" or not name.startswith(("/", "./", "../", "~")):
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        return None
    what = "is not a folder" if path.exists() else "does not exist"
    return f"EMBEDDING_MODEL={name} {what} (set it to a model folder or a sentence-transformers model id)"
