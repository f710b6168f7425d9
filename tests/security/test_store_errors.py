"""The SQLite store under a locked, full, read-only or damaged database: clear errors, nothing half-written.

Everything here is real SQLite behaviour: another connection holding the write lock, SQLITE_FULL from a page
limit (`PRAGMA max_page_count`, the same error a full disk gives), and a read-only file for a process that runs
as an unprivileged user (root ignores file permissions, so that process drops to `nobody` with setpriv).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import HashEmbedder, content_digest

from crawlrag.chunking import chunk_markdown
from crawlrag.models import CrawlJob, Page, content_hash
from crawlrag.store import PageWrite, StoreError
from crawlrag.store.sqlite import SQLiteStore

pytestmark = pytest.mark.hostile

EMBEDDER = HashEmbedder()


def page_write(url: str, words: int = 50) -> PageWrite:
    markdown = "# Title\n\n" + " ".join(f"word{i}" for i in range(words))
    page = Page(url=url, source_id="docs.test", title="Title", markdown=markdown)
    chunks = chunk_markdown(markdown, url=url, title=page.title, chunk_size=1000)
    texts = [chunk.content for chunk in chunks]
    return PageWrite(page, chunks, EMBEDDER.embed_documents(texts), [content_hash(text) for text in texts])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "store.db", busy_timeout_ms=20)
    opened.ensure_source("docs.test", EMBEDDER.model_name, EMBEDDER.dimension)
    opened.write_page(page_write("http://docs.test/first"))
    try:
        yield opened
    finally:
        opened.close()


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection takes the write lock and keeps it for `seconds`."""
    locked = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert locked.wait(5)
    return thread


def test_a_briefly_locked_database_is_retried(store: SQLiteStore) -> None:
    thread = hold_write_lock(store.path, 0.3)  # longer than the 20 ms busy timeout, shorter than the retries
    store.write_page(page_write("http://docs.test/second"))
    thread.join()
    assert store.get_page("http://docs.test/second") is not None


def test_a_database_that_stays_locked_is_a_clear_error(store: SQLiteStore) -> None:
    before = content_digest(store.path)
    thread = hold_write_lock(store.path, 1.5)  # longer than the busy timeout and every retry together
    started = time.monotonic()
    with pytest.raises(StoreError, match="stayed locked by another process: try again"):
        store.write_page(page_write("http://docs.test/second"))
    assert time.monotonic() - started < 1.4
    thread.join()
    assert content_digest(store.path) == before
    store.write_page(page_write("http://docs.test/second"))  # usable once the lock is gone


def test_a_full_disk_is_a_clear_error_and_writes_nothing(store: SQLiteStore) -> None:
    before = content_digest(store.path)
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL, as on a full disk
    with pytest.raises(StoreError, match="the disk is full or failing"):
        store.write_page(page_write("http://docs.test/big", words=50_000))
    assert content_digest(store.path) == before
    assert store.get_page("http://docs.test/big") is None and store.get_page("http://docs.test/first") is not None
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    store.write_page(page_write("http://docs.test/big", words=50_000))


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not SQLite\x00" * 500)
    with pytest.raises(StoreError, match="is not a usable crawlrag database"):
        SQLiteStore(path)


def test_a_directory_in_place_of_the_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open the database"):
        SQLiteStore(tmp_path / "dir.db")


PROBE = """
import sys
from crawlrag.models import CrawlJob
from crawlrag.store import StoreError
from crawlrag.store.sqlite import SQLiteStore
try:
    store = SQLiteStore(sys.argv[1])
    store.save_job(CrawlJob(job_id="written", url="http://docs.test/", options={}))
    print("WROTE")
except StoreError as exc:
    print("StoreError:", exc)
"""


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory outside pytest's (root-only) temporary tree, so that `nobody` can reach it."""
    path = Path(tempfile.mkdtemp(prefix="crawlrag-readonly-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        path.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command as `nobody`, with HOME=/nonexistent like a service account."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a process as an unprivileged user")
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args]
    base = {"PATH": os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1", "HOME": "/nonexistent"}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={**base, **env})


@pytest.mark.parametrize("directory_writable", [True, False], ids=["file-read-only", "folder-read-only"])
def test_a_read_only_database_is_a_clear_error(directory_writable: bool, world_readable_dir: Path) -> None:
    path = world_readable_dir / "crawlrag.db"
    SQLiteStore(path).close()
    path.chmod(0o444)
    world_readable_dir.chmod(0o777 if directory_writable else 0o555)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = as_nobody(sys.executable, "-c", PROBE, str(path))
    assert result.stdout.strip() == f"StoreError: the database {path} is read-only: check its permissions", result
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_missing_database_in_a_read_only_folder_is_a_clear_error(world_readable_dir: Path) -> None:
    world_readable_dir.chmod(0o555)
    path = world_readable_dir / "new.db"
    result = as_nobody(sys.executable, "-c", PROBE, str(path))
    assert result.stdout.startswith(f"StoreError: cannot open the database {path}"), result
    assert not path.exists()


def test_the_cli_reports_a_read_only_database(world_readable_dir: Path) -> None:
    path = world_readable_dir / "crawlrag.db"
    store = SQLiteStore(path)
    store.save_job(CrawlJob(job_id="kept", url="http://docs.test/", options={}))
    store.close()
    path.chmod(0o444)
    cli = "from crawlrag.cli import app; app()"  # `crawlrag sources`
    result = as_nobody(
        sys.executable, "-c", cli, "sources", DATABASE_URL=f"sqlite:///{path}", ALLOW_PRIVATE_NETWORK="false"
    )
    assert result.returncode == 1, result
    assert f"error: the database {path} is read-only" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
