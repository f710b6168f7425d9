"""Helpers for the hostile-input suite (imported as a plain module; tests/security is on sys.path).

Nothing here touches the real network: `FakeResolver` answers from a table (unknown names fail like NXDOMAIN)
and `RecordingBackend` records where a connection would go and refuses to make it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpcore
import numpy as np
from prometheus_client import CollectorRegistry

from crawlrag.chunking import chunk_markdown
from crawlrag.config import Settings
from crawlrag.context import AppContext
from crawlrag.models import content_hash
from crawlrag.search import SearchService
from crawlrag.store import open_store
from crawlrag.tokens import EstimatedTokenCounter, TokenCounter

DOCS_HOST = "docs.allowed.test"  # in ALLOWED_HOSTS of the suite's settings; resolves to 127.0.0.1
INTERNAL_HOST = "intranet.corp.test"  # resolves to 127.0.0.1, not exempt
PUBLIC_LOOKING_HOST = "docs.python-org.com"  # looks public, resolves to 127.0.0.1, not exempt
CONTENT_TABLES = ("sources", "pages", "chunks", "code_examples")

SettingsFactory = Callable[..., Settings]  # the `hostile_settings` fixture


class FakeResolver:
    """Answers from `names`; a list of answers per name is used in turn (the last one repeats): DNS rebinding."""

    def __init__(self, names: Mapping[str, Sequence[str] | Sequence[Sequence[str]]]) -> None:
        self._names = {name: _answers(value) for name, value in names.items()}
        self.queries: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.queries.append(host)
        answers = self._names.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        asked = self.queries.count(host)
        return list(answers[min(asked, len(answers)) - 1])


def _answers(value: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    if value and isinstance(value[0], str):
        return [[str(address) for address in value]]
    return [list(answer) for answer in value]


def suite_resolver(**extra: Sequence[str]) -> FakeResolver:
    names: dict[str, Sequence[str]] = {
        DOCS_HOST: ["127.0.0.1"],
        INTERNAL_HOST: ["127.0.0.1"],
        PUBLIC_LOOKING_HOST: ["127.0.0.1"],
    }
    names.update(extra)
    return FakeResolver(names)


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records the (address, port) of every connection attempt and makes none."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("recording backend: no connection is made")

    async def sleep(self, seconds: float) -> None:
        pass


class HashEmbedder:
    """A deterministic bag-of-words embedder: no model to load, so the suite stays fast and offline."""

    model_name = "crawlrag-test-hash-embedder"
    dimension = 64
    max_input_tokens = None

    def token_counter(self) -> TokenCounter:
        return EstimatedTokenCounter()

    def __init__(self) -> None:
        self.load_count = 0

    def load(self) -> None:
        self.load_count += 1

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.embed_query(text) for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vector[hashlib.blake2b(word.encode(), digest_size=2).digest()[0] % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            vector[0], norm = 1.0, 1.0
        return vector / norm

    def status(self) -> dict[str, Any]:
        return {"model": self.model_name, "loaded": True, "load_count": self.load_count}

    def close(self) -> None:
        pass


def make_context(settings: Settings, embedder: HashEmbedder | None = None) -> AppContext:
    """An AppContext like `AppContext.create`, with the hash embedder and no reranker."""
    store = open_store(settings)
    model = embedder or HashEmbedder()
    return AppContext(settings, store, model, None, SearchService(settings, store, model, None), CollectorRegistry())


# --- the database, looked at from outside ---------------------------------------------------------------------------


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def content_digest(path: Path) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row, per content table: equal digests mean nothing was changed."""
    if not path.exists():
        return {}
    with contextlib.closing(read_only(path)) as conn:
        digest = {}
        for table in CONTENT_TABLES:
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            digest[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        return digest


def check_store_invariants(path: Path, chunk_size: int, dimension: int) -> dict[str, int]:
    """Assert what a crash must never break; return the page and chunk counts.

    SQLite's own integrity check; both FTS indexes agree with their content tables; no orphans; every page's
    chunks are complete (0..chunk_count-1) and are exactly what chunking the page's markdown gives; every
    stored hash matches the text it was computed from; every vector has the embedder's size.
    """
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # rank=1: also compare the index with the external content table (a half-applied write would differ).
        conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
        conn.execute("INSERT INTO code_fts(code_fts, rank) VALUES('integrity-check', 1)")
        indexed = {row[0] for row in conn.execute("SELECT id FROM chunks_fts_docsize")}
        assert indexed == {row[0] for row in conn.execute("SELECT id FROM chunks")}
        for orphans in (
            "SELECT id FROM chunks WHERE page_id NOT IN (SELECT id FROM pages)",
            "SELECT id FROM chunks WHERE url != (SELECT url FROM pages WHERE pages.id = chunks.page_id)",
            "SELECT id FROM code_examples WHERE page_id NOT IN (SELECT id FROM pages)",
            "SELECT id FROM pages WHERE source_id NOT IN (SELECT source_id FROM sources)",
        ):
            assert not conn.execute(orphans).fetchall(), orphans
        pages = conn.execute("SELECT id, url, title, markdown, content_hash, chunk_count, kind FROM pages").fetchall()
        chunk_total = 0
        for page_id, url, title, markdown, page_hash, chunk_count, kind in pages:
            assert page_hash == content_hash(markdown), url
            rows = conn.execute(
                "SELECT chunk_index, url, content, content_hash, length(embedding) FROM chunks"
                " WHERE page_id = ? ORDER BY chunk_index",
                (page_id,),
            ).fetchall()
            assert [row[0] for row in rows] == list(range(chunk_count)), f"incomplete chunks for {url}"
            # index pages (tables of contents) keep their markdown but are not chunked
            expected = [] if kind == "index" else chunk_markdown(markdown, url=url, title=title, chunk_size=chunk_size)
            assert [row[2] for row in rows] == [chunk.content for chunk in expected], url
            for _, chunk_url, text, text_hash, vector_bytes in rows:
                assert chunk_url == url and text_hash == content_hash(text) and vector_bytes == dimension * 4
            chunk_total += len(rows)
        return {"pages": len(pages), "chunks": chunk_total}


def page_urls(path: Path) -> list[str]:
    with contextlib.closing(read_only(path)) as conn:
        return [row[0] for row in conn.execute("SELECT url FROM pages ORDER BY url")]


def count_pages(path: Path) -> int:
    try:
        with contextlib.closing(read_only(path)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet, or the schema is being written


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
