"""`crawlrag refresh` as a real process: the report, the job record, and an unknown source."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from pipeline_helpers import cli_env, crawlrag_command
from refresh_site import ChangingSite, doc, serve_changing

pytestmark = pytest.mark.slow


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*crawlrag_command(), *args], env=cli_env(tmp_path), capture_output=True, text=True, timeout=300
    )


def test_refresh_reports_added_changed_and_removed_pages(tmp_path: Path) -> None:
    site = ChangingSite(
        {
            "/": doc("Home", "The command line manual.", "/old.html", "/same.html"),
            "/old.html": doc("Old", "The old page documents the marmotremoved option."),
            "/same.html": doc("Same", "This page does not change between the crawls."),
        }
    )
    with serve_changing(site):
        crawled = run(tmp_path, "crawl", site.url("/"), "--max-depth", "1", "--refresh-every", "6")
        del site.pages["/old.html"]
        site.pages["/"] = doc("Home", "The command line manual.", "/new.html", "/same.html")
        site.pages["/new.html"] = doc("New", "The new page documents the ibexadded option.")
        refreshed = run(tmp_path, "refresh", "--json")
        unknown = run(tmp_path, "refresh", "--source", "nowhere.example")
    listed = run(tmp_path, "jobs", "--json")

    assert crawled.returncode == 0, crawled.stderr
    assert refreshed.returncode == 0, refreshed.stderr
    (result,) = json.loads(refreshed.stdout)["refreshes"]
    assert (result["pages_added"], result["pages_changed"], result["pages_unchanged"]) == (1, 1, 1)
    assert result["pages_removed"] == 1 and result["job"]["status"] == "completed"
    assert unknown.returncode == 1 and "unknown source 'nowhere.example'" in unknown.stderr
    assert site.source_id in unknown.stderr
    jobs = json.loads(listed.stdout)["jobs"]
    assert [job["status"] for job in jobs] == ["completed", "completed"]
    with sqlite3.connect(tmp_path / "cli.db") as db:
        assert db.execute("SELECT refresh_interval_hours FROM sources").fetchall() == [(6.0,)]
