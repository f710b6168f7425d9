"""`crawlrag crawl --version`, `search --source S --version V`, `sources --json` and `delete` as real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pipeline_helpers import cli_env, crawlrag_command
from version_site import serve_versions

pytestmark = pytest.mark.slow


def run(tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*crawlrag_command(), *args],
        env=cli_env(tmp_path, RESPECT_ROBOTS_TXT="false"),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,  # not a terminal: delete must refuse without --yes
    )


def _unwrapped(text: str) -> str:
    return " ".join(text.split())  # the terminal printer wraps long lines


def test_versions_from_the_command_line(tmp_path: Path) -> None:
    with serve_versions(tmp_path / "site") as base:
        site = base.removeprefix("http://")
        one = run(tmp_path, "crawl", f"{base}/docs/1.0/", "--version", "1.0", "--json")
        two = run(tmp_path, "crawl", f"{base}/docs/2.0/", "--json")
        bad = run(tmp_path, "crawl", f"{base}/docs/2.0/", "--version", "two words")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr, two.stderr)
    assert bad.returncode == 1 and "may hold only letters" in _unwrapped(bad.stderr)

    [source] = json.loads(run(tmp_path, "sources", "--json").stdout)["sources"]
    assert (source["source_id"], source["default_version"]) == (site, "2.0")
    assert [v["version"] for v in source["versions"]] == ["2.0", "1.0"]

    found = run(tmp_path, "search", "install from a source checkout", "--source", site, "--version", "1.0", "--json")
    answer = json.loads(found.stdout)
    assert answer["versions"] == {site: "1.0"} and answer["results"]
    assert all(hit["version"] == "1.0" and hit["indexed_at"] and hit["source_id"] == site for hit in answer["results"])
    newest = json.loads(run(tmp_path, "search", "configuration file", "--source", site, "--json").stdout)
    assert newest["versions"] == {site: "2.0"} and {hit["version"] for hit in newest["results"]} == {"2.0"}
    unknown = run(tmp_path, "search", "install", "--source", site, "--version", "3.0")
    assert unknown.returncode == 2 and "indexed versions: 2.0, 1.0" in _unwrapped(unknown.stderr)

    refused = run(tmp_path, "delete", site, "--version", "1.0")
    assert refused.returncode == 1 and "without --yes" in _unwrapped(refused.stderr)
    deleted = run(tmp_path, "delete", site, "--version", "1.0", "--yes", "--json")
    assert deleted.returncode == 0, deleted.stderr
    report = json.loads(deleted.stdout)
    assert [c["version"] for c in report["deleted"]] == ["1.0"] and report["remaining_versions"] == ["2.0"]
    [source] = json.loads(run(tmp_path, "sources", "--json").stdout)["sources"]
    assert [v["version"] for v in source["versions"]] == ["2.0"] and source["pages"] == 3
