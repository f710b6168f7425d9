"""`crawlrag crawl PATH`: refused without ALLOWED_PATHS (naming it), and a folder indexed and searched with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_fixtures import MARKERS, build_folder
from typer.testing import CliRunner

from crawlrag.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "BROWSER": "never", "ALLOWED_PATHS": ""}


def test_crawl_dir_without_allowed_paths_exits_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    docs = build_folder(tmp_path / "docs", outside=tmp_path / "outside")
    for target in (str(docs), docs.as_uri(), "./docs/handbook"):
        result = CliRunner().invoke(app, ["crawl", target], env=env)
        assert result.exit_code == 1, result.output
        assert "ALLOWED_PATHS" in result.output
    assert not (tmp_path / "cli.db").exists() or (tmp_path / "cli.db").stat().st_size < 200_000


def test_allowed_paths_refuses_dot_dot_out_of_the_root(env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "a"
    root.mkdir()
    result = CliRunner().invoke(app, ["crawl", f"{root}/../etc"], env={**env, "ALLOWED_PATHS": str(root)})
    assert result.exit_code == 1 and "outside ALLOWED_PATHS" in result.output


def test_source_id_and_ref_are_for_local_targets(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["crawl", "https://example.com/", "--ref", "v1"], env=env)
    assert result.exit_code == 2 and "--ref" in result.output


def test_crawl_folder_then_search(env: dict[str, str], tmp_path: Path) -> None:
    docs = build_folder(tmp_path / "docs", outside=tmp_path / "outside")
    env = {**env, "ALLOWED_PATHS": str(tmp_path / "docs")}
    result = CliRunner().invoke(app, ["crawl", str(docs), "--source-id", "hb", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pages_stored"] == len(MARKERS) and report["sources"] == ["hb"]
    found = CliRunner().invoke(app, ["search", MARKERS["guide.md"], "--mode", "keyword", "--json"], env=env)
    assert found.exit_code == 0, found.output
    [hit] = json.loads(found.stdout)["results"]
    assert hit["url"] == (docs / "guide.md").as_uri() and hit["source_id"] == "hb"
    result = CliRunner().invoke(app, ["crawl", str(docs), "--ref", "v1"], env=env)
    assert result.exit_code == 1 and "not a repository" in result.output
