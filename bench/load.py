"""Load benchmark: concurrent MCP clients searching while the same server crawls a site. Loopback only.

    .venv/bin/python bench/load.py                          # 8 clients, 60 s, the Python docs if installed
    .venv/bin/python bench/load.py --clients 16 --duration 120 --site generated --pages 400

What runs: a site served on 127.0.0.1 (the Python 3.11 HTML docs from /usr/share/doc/python3.11/html, or a
generated site), `crawlrag serve --transport http` as a subprocess on 127.0.0.1 with a temporary SQLite
database and the configured embedding model, one `smart_crawl_url` job on the site, and N MCP clients (the SDK
client over Streamable HTTP, one session each) calling `perform_rag_query` in a loop until the time is up.

Reported (JSON on stdout, a summary on stderr): calls, throughput, latency p50/p95/p99/max, failures by kind,
the same split into "while the crawl ran" and "after it ended", and the crawl's progress. Bounded: at most 64
clients, 600 seconds, 5000 pages; every address used is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent))
from _common import serve_directory, serve_handler

LOOPBACK = "127.0.0.1"
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
MAX_CLIENTS, MAX_SECONDS, MAX_PAGES = 64, 600, 5000
CALL_TIMEOUT_SECONDS = 60.0
PYDOCS_QUERIES = [
    "read a file line by line",
    "asyncio event loop run until complete",
    "os.scandir directory entries",
    "json.dumps indent sort_keys",
    "subprocess run capture output",
    "dataclass field default_factory",
    "regular expression named groups",
    "pathlib glob recursive",
    "unittest.mock patch object",
    "datetime timezone utc",
    "itertools groupby",
    "logging basicConfig format",
    "contextlib contextmanager decorator",
    "typing Protocol structural subtyping",
    "socket create_connection timeout",
    "sqlite3 row factory",
    "argparse subcommands",
    "collections Counter most_common",
    "functools lru_cache maxsize",
    "how do I sort a dictionary by value",
]
GENERATED_QUERIES = [f"topic {index} explained" for index in range(20)] + ["install the package", "error handling"]


@dataclass
class Call:
    started: float
    seconds: float
    outcome: str  # "ok", or the kind of failure


@dataclass
class CrawlWatch:
    job_id: str = ""
    status: str = "unknown"
    pages_done: int = 0
    chunks_stored: int = 0
    ended_at: float | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)


# --- the site -------------------------------------------------------------------------------------------------------


def _generated_page(index: int, pages: int) -> bytes:
    links = " ".join(f'<a href="/p/{(index * 7 + step) % pages}.html">next {step}</a>' for step in range(1, 6))
    sections = "".join(
        f"<h2>Topic {index % 20} part {part}</h2><p>"
        + " ".join(f"Topic {index % 20} explained with detail {word} of page {index}." for word in range(25))
        + "</p>"
        for part in range(4)
    )
    return (
        f"<html><head><title>Page {index}</title></head><body><nav>{links}</nav><main><h1>Page {index}</h1>"
        f"{sections}</main></body></html>"
    ).encode()


@contextmanager
def serve_generated(pages: int) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                body = (
                    "<html><body><main><h1>Index</h1>"
                    + "".join(f'<a href="/p/{index}.html">{index}</a> ' for index in range(pages))
                    + "</main></body></html>"
                ).encode()
            elif path.startswith("/p/") and path.endswith(".html") and path[3:-5].isdigit() and int(path[3:-5]) < pages:
                body = _generated_page(int(path[3:-5]), pages)
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


# --- the server -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    """`crawlrag serve`: the installed command once the CLI registers it, else the same function through typer."""
    from crawlrag.cli import app

    names = {
        command.name or (command.callback.__name__ if command.callback else "") for command in app.registered_commands
    }
    script = Path(sys.executable).parent / "crawlrag"
    if "serve" in names and script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "import typer; from crawlrag.server.commands import serve; typer.run(serve)"]


def server_env(workdir: Path, max_concurrent: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "CRAWL", "HOST", "PORT", "TRANSPORT"))}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'load.db'}",
        ALLOW_PRIVATE_NETWORK="true",  # the site is on 127.0.0.1
        BROWSER="never",
        CRAWL_WAIT_SECONDS="0",  # the crawl tool returns its job id at once
        MAX_CONCURRENT=str(max_concurrent),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


async def wait_until_ready(base: str, process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """Poll /health until the store answers and the embedding model has loaded."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode}")
            try:
                document = (await http.get(base + "/health", timeout=5)).json()
                if document.get("embedder", {}).get("ready"):
                    return dict(document)
            except (httpx.HTTPError, ValueError):
                pass
            await anyio.sleep(0.25)
    raise TimeoutError(f"the server was not ready within {timeout:g}s")


# --- the load -------------------------------------------------------------------------------------------------------


async def client_loop(url: str, queries: list[str], deadline: float, calls: list[Call], seed: int) -> None:
    rng = random.Random(seed)
    try:
        async with Client(url) as client:
            while time.monotonic() < deadline:
                started = time.monotonic()
                outcome = "ok"
                try:
                    with anyio.fail_after(CALL_TIMEOUT_SECONDS):
                        result = await client.call_tool(
                            "perform_rag_query", {"query": rng.choice(queries), "match_count": 5}
                        )
                    if result.is_error:
                        outcome = "tool_error"
                except TimeoutError:
                    outcome = "timeout"
                except Exception as exc:
                    outcome = f"exception:{type(exc).__name__}"
                calls.append(Call(started, time.monotonic() - started, outcome))
    except Exception as exc:  # the session itself failed: count it, keep the other clients going
        calls.append(Call(time.monotonic(), 0.0, f"session:{type(exc).__name__}"))


async def watch_crawl(url: str, watch: CrawlWatch, deadline: float) -> None:
    async with Client(url) as client:
        while time.monotonic() < deadline:
            result = await client.call_tool("get_crawl_status", {"job_id": watch.job_id})
            status = result.structured_content or {}
            watch.status = str(status.get("status", "unknown"))
            progress = status.get("progress", {})
            watch.pages_done = int(progress.get("pages_done", 0))
            watch.chunks_stored = int(progress.get("chunks_stored", 0))
            watch.samples.append((time.monotonic(), watch.pages_done))
            if watch.status not in ("queued", "running") and watch.ended_at is None:
                watch.ended_at = time.monotonic()
            await anyio.sleep(1.0)


def summarize(calls: list[Call], seconds: float) -> dict[str, Any]:
    ok = sorted(call.seconds * 1000 for call in calls if call.outcome == "ok")

    def percentile(fraction: float) -> float | None:
        if not ok:
            return None
        return round(ok[min(len(ok) - 1, round(fraction * (len(ok) - 1)))], 1)

    return {
        "calls": len(calls),
        "ok": len(ok),
        "failures": dict(Counter(call.outcome for call in calls if call.outcome != "ok")),
        "throughput_per_s": round(len(ok) / seconds, 2) if seconds > 0 else None,
        "latency_ms": {
            "p50": percentile(0.50),
            "p95": percentile(0.95),
            "p99": percentile(0.99),
            "max": round(ok[-1], 1) if ok else None,
            "mean": round(statistics.fmean(ok), 1) if ok else None,
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    workdir = Path(tempfile.mkdtemp(prefix="crawlrag-load-"))
    pydocs = args.site == "pydocs"
    site = serve_directory(PYTHON_DOCS) if pydocs else serve_generated(args.pages)
    queries = PYDOCS_QUERIES if pydocs else GENERATED_QUERIES
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    command = [*serve_command(), "--transport", "http", "--host", LOOPBACK, "--port", str(port)]
    log = (workdir / "server.log").open("wb")
    with site as site_url:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(workdir, args.crawl_concurrency),
            start_new_session=True,
        )
        try:
            started = time.monotonic()
            health = await wait_until_ready(base, process, timeout=300)
            ready_seconds = time.monotonic() - started
            mcp_url = base + "/mcp"
            async with Client(mcp_url) as client:
                crawl = await client.call_tool(
                    "smart_crawl_url",
                    {
                        "url": site_url,
                        "max_depth": args.max_depth,
                        "max_pages": args.pages,
                        "max_concurrent": args.crawl_concurrency,
                    },
                )
            job = crawl.structured_content or {}
            if crawl.is_error or "job_id" not in job:
                raise RuntimeError(f"the crawl did not start: {job}")
            watch = CrawlWatch(job_id=str(job["job_id"]))
            calls: list[Call] = []
            load_started = time.monotonic()
            deadline = load_started + args.duration
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch_crawl, mcp_url, watch, deadline)
                for index in range(args.clients):
                    tasks.start_soon(client_loop, mcp_url, queries, deadline, calls, args.seed + index)
            elapsed = time.monotonic() - load_started
            async with httpx.AsyncClient() as http:
                final_health = (await http.get(base + "/health", timeout=10)).json()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            log.close()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    crawl_end = watch.ended_at or float("inf")
    during = [call for call in calls if call.started < crawl_end]
    after = [call for call in calls if call.started >= crawl_end]
    during_seconds = min(crawl_end, load_started + elapsed) - load_started
    return {
        "setup": {
            "clients": args.clients,
            "duration_s": args.duration,
            "site": f"Python 3.11 docs ({PYTHON_DOCS})" if pydocs else f"generated, {args.pages} pages",
            "max_pages": args.pages,
            "crawl_concurrency": args.crawl_concurrency,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server_ready_s": round(ready_seconds, 1),
            # Other work on the machine shares its CPUs with server and clients: read the numbers with this.
            "load_average_1m_before": round(load_before, 2) if load_before is not None else None,
            "load_average_1m_after": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "embedder": health.get("embedder", {}).get("model"),
            "store": "sqlite",
        },
        "all": summarize(calls, elapsed),
        "while_crawling": summarize(during, during_seconds) | {"seconds": round(during_seconds, 1)},
        "after_crawl": summarize(after, elapsed - during_seconds) | {"seconds": round(elapsed - during_seconds, 1)},
        "crawl": {
            "status_at_end": watch.status,
            "pages_done": watch.pages_done,
            "chunks_stored": watch.chunks_stored,
            "finished_after_s": round(crawl_end - load_started, 1) if watch.ended_at else None,
            "pages_in_store": final_health.get("store", {}).get("pages"),
        },
        "server_status_at_end": final_health.get("status"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent MCP clients (1-{MAX_CLIENTS})")
    parser.add_argument("--duration", type=float, default=60.0, help=f"seconds of load (1-{MAX_SECONDS})")
    default_site = "pydocs" if (PYTHON_DOCS / "index.html").exists() else "generated"
    parser.add_argument("--site", choices=["pydocs", "generated"], default=default_site)
    parser.add_argument("--pages", type=int, default=300, help=f"MAX_PAGES of the crawl (1-{MAX_PAGES})")
    parser.add_argument("--max-depth", type=int, default=5)
    parser.add_argument("--crawl-concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json-out", type=Path, help="also write the JSON report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, server log)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be between 1 and {MAX_CLIENTS}")
    if not 1 <= args.duration <= MAX_SECONDS:
        parser.error(f"--duration must be between 1 and {MAX_SECONDS}")
    if not 1 <= args.pages <= MAX_PAGES:
        parser.error(f"--pages must be between 1 and {MAX_PAGES}")
    if args.site == "pydocs" and not (PYTHON_DOCS / "index.html").exists():
        parser.error(f"{PYTHON_DOCS} is not installed; use --site generated")
    return args


def main() -> None:
    args = parse_args()
    report = anyio.run(run, args)
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.json_out:
        args.json_out.write_text(text + "\n")
    overall, crawl = report["all"], report["crawl"]
    latency = overall["latency_ms"]
    sys.stderr.write(
        f"{overall['ok']} ok / {overall['calls']} calls from {args.clients} clients in {args.duration:g}s: "
        f"{overall['throughput_per_s']} calls/s, p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
        f"p99 {latency['p99']} ms, failures {overall['failures'] or 'none'}; crawl {crawl['status_at_end']} "
        f"with {crawl['pages_done']} pages done\n"
    )


if __name__ == "__main__":
    main()
