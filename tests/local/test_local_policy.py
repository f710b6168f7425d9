"""ALLOWED_PATHS: nothing local is readable by default, and paths are resolved before they are checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crawlrag.config import ConfigError, Settings, load_settings
from crawlrag.crawl import CrawlInputError
from crawlrag.local import LocalAccessError, check_local_url, is_local_target, resolve_target
from crawlrag.local.policy import file_url, path_from_file_url
from crawlrag.local.target import TargetKind
from crawlrag.pipeline.options import CrawlOptions


def test_empty_allowed_paths_refuses_everything_and_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(LocalAccessError, match="ALLOWED_PATHS"):
        resolve_target(str(tmp_path), [])


def test_dot_dot_is_resolved_before_the_check() -> None:
    with pytest.raises(LocalAccessError, match="outside ALLOWED_PATHS") as refused:
        resolve_target("/a/../etc", ["/a"])
    assert "resolves to '/etc'" in str(refused.value)
    with pytest.raises(LocalAccessError, match="outside ALLOWED_PATHS"):
        resolve_target("file:///a/../etc/passwd", ["/a"])


def test_symlinked_root_and_prefix_siblings(tmp_path: Path) -> None:
    real = tmp_path / "docs"
    real.mkdir()
    (tmp_path / "docs-private").mkdir()
    (tmp_path / "alias").symlink_to(real)
    settings = load_settings(_env_file=None, allowed_paths=str(tmp_path / "alias"))
    assert settings.allowed_paths == [str(real.resolve())]  # roots are resolved once, when settings are read
    assert resolve_target(str(real), settings.allowed_paths).kind is TargetKind.FOLDER
    with pytest.raises(LocalAccessError):  # a sibling sharing the root's name as a prefix is outside
        resolve_target(str(tmp_path / "docs-private"), settings.allowed_paths)


def test_allowed_paths_setting_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match="ALLOWED_PATHS"):
        load_settings(_env_file=None, allowed_paths="relative/docs")


def test_targets_and_urls(tmp_path: Path) -> None:
    odd = tmp_path / "with space & #hash.md"
    odd.write_text("# Odd\n")
    assert path_from_file_url(file_url(odd)) == odd
    target = resolve_target(file_url(odd), [str(tmp_path)])
    assert target.kind is TargetKind.FILE and target.url == file_url(odd) and "#" not in target.url.split("%23")[0][7:]
    assert is_local_target("./docs") and is_local_target("/x") and is_local_target("~/docs")
    assert is_local_target("file:///x") and is_local_target("git+https://example.com/r.git")
    assert not is_local_target("https://example.com/") and not is_local_target("docs.example.com")
    with pytest.raises(LocalAccessError, match="another host"):
        path_from_file_url("file://server/share/x.md")
    with pytest.raises(LocalAccessError, match="expected git"):
        resolve_target("git+https://", [])
    assert resolve_target("git+https://example.com/org/widget.git", []).name == "widget"


def test_mcp_arguments_accept_file_urls_only_under_allowed_paths(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    url = file_url(tmp_path / "docs")
    with pytest.raises(CrawlInputError, match="ALLOWED_PATHS"):
        CrawlOptions.build(make_settings(), url=url, max_depth=0)
    spec = CrawlOptions.build(make_settings(allowed_paths=[str(tmp_path)]), url=url + "/x/..", max_depth=0)
    assert spec.url == url + "/"
    with pytest.raises(CrawlInputError, match="only http:// and https://"):
        CrawlOptions.build(make_settings(allowed_paths=[str(tmp_path)]), url=str(tmp_path), max_depth=0)
    with pytest.raises(LocalAccessError, match="only as file:// URLs"):
        check_local_url("git+file:///x", [str(tmp_path)])
