"""SQLite failures turned into messages a user can act on, and taking the write lock with retries."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crawlrag.store.base import StoreError

log = logging.getLogger(__name__)

_BEGIN_ATTEMPTS = 5
_BEGIN_FIRST_DELAY_SECONDS = 0.05


@contextmanager
def translated_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's terse failures into messages that tell the user what to do."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"the write to {path} was refused as inconsistent: {exc}") from exc
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text:
            raise StoreError(f"the database {path} is read-only: check its permissions") from exc
        if "disk" in text and ("full" in text or "i/o" in text):
            raise StoreError(f"cannot write to {path}: the disk is full or failing ({exc})") from exc
        if is_busy(exc):
            raise StoreError(f"the database {path} stayed locked by another process: try again ({exc})") from exc
        if "unable to open" in text:
            raise StoreError(
                f"cannot open the database {path}: check that it and its folder exist and are writable ({exc})"
            ) from exc
        raise StoreError(f"database error in {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database" and other damage
        raise StoreError(f"{path} is not a usable crawlrag database: {exc}") from exc


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock (BEGIN IMMEDIATE), retrying with backoff while another connection holds it."""
    delay = _BEGIN_FIRST_DELAY_SECONDS
    for attempt in range(_BEGIN_ATTEMPTS):
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == _BEGIN_ATTEMPTS - 1:
                raise
            log.info("the database is locked by another connection; retrying in %.2fs", delay)
            time.sleep(delay)
            delay *= 2
