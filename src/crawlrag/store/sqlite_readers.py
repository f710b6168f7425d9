"""Read connections of the SQLite store, lent to one thread at a time so that reads run in parallel.

sqlite3 releases the GIL while a statement runs, so two searches (or the keyword side of one hybrid search and
the row fetch of its vector side) proceed at once on two connections, where one shared connection would
serialise them. In WAL mode every connection reads the last commit, so which one a read gets does not matter.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ReaderPool:
    """Connections opened on demand and kept (up to `keep` idle ones) for the next read."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], keep: int = 4) -> None:
        self._connect = connect
        self._keep = keep
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle) < self._keep
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        """Close the idle connections; ones lent out are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class SharedReader:
    """The one connection of an in-memory database (a second connection would open another, empty one)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock

    @contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        pass  # the store closes its connection itself
