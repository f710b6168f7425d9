"""kill -9 during a crawl: what was committed survives, nothing is half-written, and the next crawl resumes.

`crawlrag crawl` (and `crawlrag serve`) run as subprocesses against a site served by this test on 127.0.0.1 and
are killed with SIGKILL at several points: after the first page, a third and two thirds of the site, each with a
random extra delay (the seed is in the failure message; CRAWLRAG_CRASH_SEED repeats a run). After every kill the
database is opened again and `check_store_invariants` must hold; the pages stored before a kill are all still
there after the next one; a final crawl completes the site and finds the earlier pages unchanged, not new.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hostile_http import HostileServer, _Handler, body
from mcp import Client
from security_helpers import HashEmbedder, check_store_invariants, count_pages, make_context, page_urls, wait_for

from crawlrag.config import Settings
from crawlrag.server.app import build_mcp_server
from crawlrag.server.runtime import ServerRuntime

pytestmark = [pytest.mark.hostile, pytest.mark.slow]

PAGES = 90
CHUNK_SIZE = 1000
WORKER = Path(__file__).with_name("crash_worker.py")
SEED = int(os.environ.get("CRAWLRAG_CRASH_SEED", str(time.time_ns() % 1_000_000)))


def page_html(index: int) -> str:
    sections = "".join(
        f"<h2>Section {index}.{part}</h2><p>"
        + " ".join(f"term{index}x{part}x{word} explains topic {word % 7}." for word in range(40))
        + "</p>"
        for part in range(6)
    )
    return f"<html><head><title>Page {index}</title></head><body><main><h1>Page {index}</h1>{sections}</main></body>"


def delayed(responder: Any, seconds: float) -> Any:
    def respond(handler: _Handler) -> None:
        if not handler.owner.stopping.wait(seconds):
            responder(handler)

    return respond


@pytest.fixture
def site() -> Iterator[tuple[str, set[str]]]:
    """A site of PAGES pages (about six chunks each) all linked from "/", each answering after 40 ms."""
    with HostileServer() as server:
        links = "".join(f'<a href="/p/{index}.html">page {index}</a> ' for index in range(PAGES))
        server.route("/", body(f"<html><body><main><h1>Index</h1><p>All pages: {links}</p></main></body></html>"))
        for index in range(PAGES):
            server.route(f"/p/{index}.html", delayed(body(page_html(index)), 0.04))
        base = server.url("")
        yield base + "/", {base + "/", *(f"{base}/p/{index}.html" for index in range(PAGES))}


def worker_env(db: Path, **extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        ALLOW_PRIVATE_NETWORK="true",  # the site is on 127.0.0.1 and the CLI has no test resolver
        BROWSER="never",
        RESPECT_ROBOTS_TXT="false",
        CHUNK_SIZE=str(CHUNK_SIZE),
        MAX_CONCURRENT="4",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def kill_when(process: subprocess.Popen[bytes], db: Path, pages: int, rng: random.Random) -> bool:
    """SIGKILL the process once `pages` pages are committed (plus a random delay); False if it ended first."""
    wait_for(lambda: count_pages(db) >= pages or process.poll() is not None, timeout=90, interval=0.005)
    time.sleep(rng.uniform(0, 0.06))
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return True


def job_status(db: Path, job_id: str) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0])


def test_kill_9_during_cli_crawls_loses_nothing_committed(site: tuple[str, set[str]], tmp_path: Path) -> None:
    start_url, expected = site
    db, log = tmp_path / "crash.db", tmp_path / "worker.log"
    rng = random.Random(SEED)
    command = [sys.executable, str(WORKER), "crawl", start_url, "--max-depth", "1"]
    kept: set[str] = set()
    history = []
    for threshold in (1, PAGES // 3, 2 * PAGES // 3):
        process = start(command, worker_env(db), log)
        killed = kill_when(process, db, threshold, rng)
        assert killed, f"the crawl ended before the kill at {threshold} pages (seed {SEED}): {log.read_text()[-2000:]}"
        counts = check_store_invariants(db, CHUNK_SIZE, HashEmbedder.dimension)
        urls = set(page_urls(db))
        assert kept <= urls, f"committed pages lost after a kill (seed {SEED}): {sorted(kept - urls)[:5]}"
        assert urls <= expected
        history.append(counts["pages"])
        kept = urls

    finished = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, env=worker_env(db), timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout)
    check_store_invariants(db, CHUNK_SIZE, HashEmbedder.dimension)
    assert set(page_urls(db)) == expected
    # Resumed, not redone: pages stored before the kills are recognised as unchanged, the rest are new.
    assert report["pages_unchanged"] == len(kept) and report["pages_stored"] == len(expected) - len(kept), report
    assert history == sorted(history) and history[0] >= 1, (history, SEED)


async def test_kill_9_of_the_server_during_a_job_then_resume(site: tuple[str, set[str]], tmp_path: Path) -> None:
    start_url, expected = site
    db, log = tmp_path / "server.db", tmp_path / "server.log"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, str(WORKER), "serve", "--transport", "http", "--port", str(port)]
    process = start(command, worker_env(db, CRAWL_WAIT_SECONDS="0"), log)
    try:
        with anyio.fail_after(60):
            while True:
                try:
                    async with httpx.AsyncClient() as http:
                        if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                            break
                except httpx.HTTPError:
                    assert process.poll() is None, log.read_text()[-3000:]
                await anyio.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            started = (await client.call_tool("smart_crawl_url", {"url": start_url, "max_depth": 1})).structured_content
        assert started is not None and started["status"] in ("queued", "running"), started
        job_id = started["job_id"]
        killed = await anyio.to_thread.run_sync(kill_when, process, db, PAGES // 2, random.Random(SEED))
        assert killed, f"the job ended before the kill (seed {SEED})"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    check_store_invariants(db, CHUNK_SIZE, HashEmbedder.dimension)
    assert job_status(db, job_id) == "running"  # nobody was left to record the end
    kept = set(page_urls(db))

    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{db}",
        allow_private_network=True,
        browser="never",
        respect_robots_txt=False,
        chunk_size=CHUNK_SIZE,
        crawl_wait_seconds=60,
    )
    context = make_context(settings)
    try:
        runtime = ServerRuntime(settings, context=context)
        async with runtime, Client(build_mcp_server(runtime)) as client:
            assert runtime.interrupted_at_start == 1
            status = (await client.call_tool("get_crawl_status", {"job_id": job_id})).structured_content
            assert status is not None and status["status"] == "interrupted" and "stopped before" in status["job_error"]
            resumed = (await client.call_tool("resume_crawl", {"job_id": job_id})).structured_content
    finally:
        context.close()
    assert resumed is not None and resumed["status"] == "completed", resumed
    assert resumed["result"]["pages_unchanged"] == len(kept)
    assert resumed["result"]["pages_stored"] == len(expected) - len(kept)
    check_store_invariants(db, CHUNK_SIZE, HashEmbedder.dimension)
    assert set(page_urls(db)) == expected and job_status(db, job_id) == "completed"


@pytest.mark.skipif(os.environ.get("CRAWLRAG_SLOW_TESTS") != "1", reason="set CRAWLRAG_SLOW_TESTS=1 (about a minute)")
def test_kill_9_of_the_installed_crawlrag_binary_with_the_real_model(
    site: tuple[str, set[str]], tmp_path: Path
) -> None:
    start_url, expected = site
    db, log = tmp_path / "real.db", tmp_path / "real.log"
    binary = str(Path(sys.executable).parent / "crawlrag")
    command = [binary, "crawl", start_url, "--max-depth", "1"]
    process = start(command, worker_env(db), log)
    assert kill_when(process, db, PAGES // 3, random.Random(SEED)), log.read_text()[-2000:]
    dimension = 384  # all-MiniLM-L6-v2
    check_store_invariants(db, CHUNK_SIZE, dimension)
    kept = set(page_urls(db))
    finished = subprocess.run([*command, "--json"], capture_output=True, text=True, env=worker_env(db), timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout)
    check_store_invariants(db, CHUNK_SIZE, dimension)
    assert set(page_urls(db)) == expected and report["pages_unchanged"] == len(kept)
