"""Scale-out benchmark: crawl throughput (pages/s) of 1 vs 2 `crawlrag worker` processes on one PostgreSQL queue.

    .venv/bin/python bench/scale.py --database-url postgresql://postgres@127.0.0.1:54329/postgres
    .venv/bin/python bench/scale.py --pages 100 --delay 0.2 --workers 1 2 3

What runs: two generated sites on 127.0.0.1 whose pages answer after `--delay` seconds (a remote site's latency),
then for each worker count a fresh schema in the database, that many `crawlrag worker` subprocesses (the configured
embedding model, WORKER_CONCURRENCY=1), and one crawl job per site put straight into the shared queue. Measured:
from the first job's creation to the last one's end (database clock), pages stored per second. Worker start-up
(model loading) is not measured: the jobs are queued once every worker reports ready on /health.

With one worker the two jobs run one after the other; with two, side by side. Compare the configurations of one run
(the machine may be shared); JSON on stdout, a summary on stderr. Every address used is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
from _common import serve_handler
from psycopg import sql

from crawlrag.config import Settings
from crawlrag.models import CrawlJob
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.store import postgres_queue

LOOPBACK = "127.0.0.1"
READY_SECONDS = 300.0
JOB_SECONDS = 600.0


def _page(site: str, index: int, pages: int) -> bytes:
    links = "".join(f'<a href="/p{(index + step) % pages}.html">next {step}</a> ' for step in (1, 2, 3))
    text = " ".join(f"Site {site} page {index} explains feature {word} in some detail." for word in range(40))
    return (
        f"<html><head><title>{site} {index}</title></head><body><nav>{links}</nav><main>"
        f"<h1>{site} page {index}</h1><p>{text}</p></main></body></html>"
    ).encode()


@contextmanager
def serve_site(name: str, pages: int, delay: float) -> Iterator[str]:
    """A home page linking to `pages` pages; every page answers after `delay` seconds."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                anchors = "".join(f'<a href="/p{i}.html">{i}</a> ' for i in range(pages))
                body = f"<html><body><main><h1>Index</h1>{anchors}</main></body></html>".encode()
            elif path.startswith("/p") and path.endswith(".html") and path[2:-5].isdigit():
                time.sleep(delay)
                body = _page(name, int(path[2:-5]), pages)
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_handler(Handler) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {"options": f"-csearch_path={schema},public"}
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def crawlrag_command() -> list[str]:
    script = Path(sys.executable).parent / "crawlrag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "crawlrag.cli"]


@contextmanager
def workers(count: int, database_url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "ALLOW_PRIVATE_NETWORK": "true",
        "RESPECT_ROBOTS_TXT": "false",
        "BROWSER": "never",
        "WORKER_CONCURRENCY": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    ports = [free_port() for _ in range(count)]
    command = [*crawlrag_command(), "worker"]
    processes = [
        subprocess.Popen(command, env=env | {"HEALTH_PORT": str(port)}, stdout=subprocess.DEVNULL) for port in ports
    ]
    try:
        deadline = time.monotonic() + READY_SECONDS
        for port in ports:
            while True:
                try:
                    if httpx.get(f"http://{LOOPBACK}:{port}/health", timeout=2).json().get("status") == "ok":
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError("the workers did not become ready")
                time.sleep(0.25)
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def run(count: int, database_url: str, sites: list[str], pages: int) -> dict[str, Any]:
    with fresh_schema(database_url) as url, workers(count, url):
        settings = Settings(_env_file=None, database_url=url, allow_private_network=True)  # type: ignore[call-arg]
        ids = []
        with psycopg.connect(url, autocommit=True) as conn:
            for site in sites:
                options = CrawlOptions.build(settings, url=site, max_depth=1, max_pages=pages + 1, max_concurrent=2)
                job = CrawlJob(job_id=uuid.uuid4().hex, url=site, options=options.to_stored())
                postgres_queue.enqueue(conn, job, None)
                ids.append(job.job_id)
            deadline = time.monotonic() + JOB_SECONDS
            while True:
                rows = conn.execute(
                    "SELECT status, created_at, finished_at, worker FROM crawl_jobs WHERE job_id = ANY(%s)", (ids,)
                ).fetchall()
                if all(row[0] not in ("queued", "running") for row in rows):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the crawl jobs did not end in time")
                time.sleep(0.2)
            row = conn.execute("SELECT count(*), (SELECT count(*) FROM crawled_pages) FROM pages").fetchone()
    stored, chunks = (int(row[0]), int(row[1])) if row else (0, 0)
    seconds = (max(r[2] for r in rows) - min(r[1] for r in rows)).total_seconds()
    return {
        "workers": count,
        "statuses": sorted(r[0] for r in rows),
        "workers_used": len({r[3] for r in rows}),
        "pages_stored": stored,
        "chunks_stored": chunks,
        "seconds": round(seconds, 2),
        "pages_per_s": round(stored / seconds, 2) if seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CRAWLRAG_BENCH_POSTGRES_URL") or os.environ.get("CRAWLRAG_TEST_POSTGRES_URL"),
        help="PostgreSQL with pgvector (a fresh schema per configuration is created in it and dropped)",
    )
    parser.add_argument("--pages", type=int, default=60, help="pages per site (1 to 1000)")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds every page takes to answer (0 to 5)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare (1 to 8)")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or CRAWLRAG_BENCH_POSTGRES_URL) is required")
    if not (1 <= args.pages <= 1000 and 0 <= args.delay <= 5 and all(1 <= w <= 8 for w in args.workers)):
        parser.error("--pages 1..1000, --delay 0..5, --workers 1..8")
    with serve_site("alpha", args.pages, args.delay) as one, serve_site("beta", args.pages, args.delay) as two:
        results = [run(count, args.database_url, [one, two], args.pages) for count in args.workers]
    base = results[0]["pages_per_s"] or 0
    for result in results:
        result["speedup"] = round((result["pages_per_s"] or 0) / base, 2) if base else None
        sys.stderr.write(
            f"{result['workers']} worker(s): {result['pages_stored']} pages in {result['seconds']}s = "
            f"{result['pages_per_s']} pages/s (x{result['speedup']}), jobs {result['statuses']}\n"
        )
    settings = {"pages_per_site": args.pages, "delay_seconds": args.delay, "sites": 2, "max_concurrent_per_job": 2}
    sys.stdout.write(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
