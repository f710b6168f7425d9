"""`crawlrag crawl` and `crawlrag jobs` as real processes: exit codes, job records, Ctrl-C, a broken model."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from pipeline_helpers import ScriptedSite, cli_env, closed_port, crawlrag_command, page, serve

pytestmark = pytest.mark.slow


def run(tmp_path: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*crawlrag_command(), *args], env=cli_env(tmp_path, **env), capture_output=True, text=True, timeout=timeout
    )


def test_version(tmp_path: Path) -> None:
    result = run(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.startswith("crawlrag ")


def test_closed_port_exits_1_with_a_connection_error_and_is_listed_as_a_job(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    result = run(tmp_path, "crawl", url)
    listed = run(tmp_path, "jobs", "--json")

    assert result.returncode == 1, result.stderr
    assert "connection refused" in result.stderr and "robots.txt" not in result.stderr.split("error:")[-1]
    jobs = json.loads(listed.stdout)["jobs"]
    assert len(jobs) == 1
    job = jobs[0]
    assert {"job_id", "status", "progress", "worker", "started", "finished", "error"} <= set(job)
    assert job["status"] == "failed" and "connection refused" in job["error"]
    assert job["progress"]["pages_done"] == 1 and job["progress"]["pages_failed"] == 1
    host, _, pid = job["worker"].rpartition(":")
    assert host and pid.isdigit() and job["started"] and job["finished"]


def test_a_broken_embedding_model_fails_the_crawl_once_and_fast(tmp_path: Path) -> None:
    links = [f"/p{i}.html" for i in range(20)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link}") for link in links}
    with serve(ScriptedSite(routes)) as site:
        started = time.monotonic()
        result = run(tmp_path, "crawl", site.url("/"), timeout=60, EMBEDDING_MODEL="/nonexistent/embedder")
        seconds = time.monotonic() - started

    assert result.returncode != 0 and seconds < 30
    assert "/nonexistent/embedder" in result.stderr
    assert result.stderr.count("cannot be used") <= 2, result.stderr  # one error (logged and printed), not one per page
    assert "could not chunk page" not in result.stderr
    assert site.count("/p19.html") == 0 or len(site.requests) < 22  # it did not fetch the whole site first


def test_ctrl_c_stops_a_crawl_within_3_seconds_and_reports_what_was_stored(tmp_path: Path) -> None:
    links = [f"/p{i}.html" for i in range(40)]
    routes = {"/": page("Home", *links)} | {link: page(f"Page {link}") for link in links}
    with serve(ScriptedSite(routes, delay=1.0)) as site:
        process = subprocess.Popen(
            [*crawlrag_command(), "crawl", site.url("/"), "--max-concurrent", "1"],
            env=cli_env(tmp_path, RESPECT_ROBOTS_TXT="false"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            db = tmp_path / "cli.db"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:  # until the home page is stored and the slow pages are being fetched
                if db.exists():
                    with sqlite3.connect(db) as conn:
                        try:
                            if conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0] >= 2:
                                break
                        except sqlite3.OperationalError:
                            pass
                time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            stopped = time.monotonic()
            _, stderr = process.communicate(timeout=30)
            seconds = time.monotonic() - stopped
        finally:
            process.kill()
    listed = json.loads(run(tmp_path, "jobs", "--json").stdout)["jobs"]

    assert seconds < 3, (seconds, stderr)
    assert process.returncode == 130, stderr
    assert "stopped" in stderr and "stays searchable" in stderr and "Traceback" not in stderr
    assert listed[0]["status"] == "cancelled" and "SIGINT" in listed[0]["error"]
