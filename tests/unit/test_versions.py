"""Version rules: validation, source keys, detection from URLs and the newest-first order."""

from __future__ import annotations

import pytest

from crawlrag.sources.versions import (
    LATEST,
    VersionError,
    check_version,
    detect_version,
    newest_first,
    source_key,
    split_source_key,
)


@pytest.mark.parametrize("value", ["2.1", "v3", "latest", "1.x", "2.0.0-rc.1", "3.11", "main", "A_b+c-1"])
def test_valid_versions_are_kept(value: str) -> None:
    assert check_version(f"  {value} ") == value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        (None, "non-empty"),
        (3, "non-empty"),
        ("x" * 65, "limit is 64"),
        ("1.0@x", "may hold only"),
        ("a/b", "may hold only"),
        ("a b", "may hold only"),
        ("-1", "start and end"),
        ("1.", "start and end"),
        ("ünï", "may hold only"),
    ],
)
def test_bad_versions_are_refused_with_a_reason(value: object, says: str) -> None:
    with pytest.raises(VersionError, match=says):
        check_version(value)


def test_source_keys_round_trip_and_latest_is_the_site() -> None:
    assert source_key("docs.example.com", LATEST) == "docs.example.com"
    assert source_key("docs.example.com", "2.0") == "docs.example.com@2.0"
    assert source_key("127.0.0.1:8000", "v1") == "127.0.0.1:8000@v1"
    for site, version in [("docs.example.com", "latest"), ("h:81", "1.x"), ("repo", "2.0.0-rc.1")]:
        assert split_source_key(source_key(site, version)) == (site, version)
    assert split_source_key("plain") == ("plain", LATEST)
    with pytest.raises(VersionError):
        source_key("a@b", "1.0")
    with pytest.raises(VersionError):
        source_key("site", "bad version")


@pytest.mark.parametrize(
    ("url", "version", "prefix"),
    [
        ("https://docs.python.org/3.11/library/csv.html", "3.11", "https://docs.python.org/3.11/"),
        ("https://docs.python.org/3/library/csv.html", "3", "https://docs.python.org/3/"),
        ("https://api.example.com/v2/users", "v2", "https://api.example.com/v2/"),
        ("https://example.com/docs/v2.1.0/intro", "v2.1.0", "https://example.com/docs/v2.1.0/"),
        ("https://proj.readthedocs.io/en/stable/", "stable", "https://proj.readthedocs.io/en/stable/"),
        ("https://proj.readthedocs.io/en/latest/api.html", "latest", "https://proj.readthedocs.io/en/latest/"),
        ("https://example.com/guide/1.x/setup", "1.x", "https://example.com/guide/1.x/"),
        ("https://www.postgresql.org/docs/current/sql.html", "current", "https://www.postgresql.org/docs/current/"),
        ("https://www.postgresql.org/docs/16/sql.html", "16", "https://www.postgresql.org/docs/16/"),
        ("https://docs.djangoproject.com/en/5.0/topics/", "5.0", "https://docs.djangoproject.com/en/5.0/"),
        ("https://example.com/zh-cn/dev/index.html", "dev", "https://example.com/zh-cn/dev/"),
        ("https://example.com/a/b/c/2.0.0rc1/x", "2.0.0rc1", "https://example.com/a/b/c/2.0.0rc1/"),
        ("http://127.0.0.1:8000/1.0/index.html", "1.0", "http://127.0.0.1:8000/1.0/"),
        ("https://example.com/v2", "v2", "https://example.com/v2/"),
    ],
)
def test_versions_are_read_where_docs_sites_put_them(url: str, version: str, prefix: str) -> None:
    detected = detect_version(url)
    assert detected is not None
    assert (detected.version, detected.prefix) == (version, prefix)


@pytest.mark.parametrize(
    "url",
    [
        "https://docs.example.com/",
        "https://docs.example.com/guide/intro.html",
        "https://example.com/blog/2024/01/15/post",  # dates are not versions
        "https://example.com/2024/",
        "https://example.com/page/2/",  # a bare number deep in the path is a page number
        "https://example.com/blog/v8-engine/",  # words after a v-number
        "https://example.com/tutorial/latest-news/",
        "https://example.com/python/stable/",  # an alias only at the top or after a language/docs segment
        "https://example.com/release-2.0.html",
        "https://example.com/files/1.2.html",
        "file:///docs/1.0/index.md",
    ],
)
def test_paths_without_a_version_read_none(url: str) -> None:
    assert detect_version(url) is None


def test_the_leftmost_version_wins() -> None:
    detected = detect_version("https://example.com/v1/compat/2.0/page")
    assert detected is not None and detected.version == "v1"


def test_newest_first_puts_aliases_then_numbers_then_names() -> None:
    versions = ["1.0", "main", "2.0", "stable", "10.0", "latest", "2.0rc1", "v3", "1.x", "1.9.9", "dev", "2.0.1"]
    assert newest_first(versions) == [
        "latest",
        "stable",
        "10.0",
        "v3",
        "2.0.1",
        "2.0",
        "2.0rc1",
        "1.x",
        "1.9.9",
        "1.0",
        "dev",
        "main",
    ]


def test_order_compares_numbers_not_strings_and_is_stable_for_duplicates() -> None:
    assert newest_first(["3.9", "3.11", "3.10"]) == ["3.11", "3.10", "3.9"]
    assert newest_first(["1.0", "1.0", "0.9"]) == ["1.0", "0.9"]
    assert newest_first(["2.0", "2.0.post1", "2.0-beta", "2.0a1"]) == ["2.0.post1", "2.0", "2.0-beta", "2.0a1"]
    assert newest_first(["zeta", "Alpha", "1"])[0] == "1"
    assert newest_first([]) == []
