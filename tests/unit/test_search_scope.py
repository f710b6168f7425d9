"""Which source keys a search reads, and the per-site listing of versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawlrag.models import SearchHit, SourceInfo, SourceVersion
from crawlrag.sources.listing import sites_view
from crawlrag.sources.scope import ScopeError, resolve_scope
from crawlrag.sources.versions import source_key

ENTRIES = [
    SourceVersion(source_key("a.test", "1.0"), "a.test", "1.0"),
    SourceVersion(source_key("a.test", "2.0"), "a.test", "2.0"),
    SourceVersion("b.test", "b.test", "latest"),
]


def test_without_a_version_each_site_is_read_in_its_newest() -> None:
    scope = resolve_scope(ENTRIES, None, None)
    assert scope.keys == ("a.test@2.0", "b.test")
    assert scope.versions == {"a.test": "2.0", "b.test": "latest"}
    assert resolve_scope(ENTRIES, "a.test", None).keys == ("a.test@2.0",)


def test_a_version_reads_that_version_only() -> None:
    scope = resolve_scope(ENTRIES, "a.test", " 1.0 ")
    assert (scope.keys, scope.versions) == (("a.test@1.0",), {"a.test": "1.0"})
    assert resolve_scope(ENTRIES, "a.test@1.0", None).keys == ("a.test@1.0",)  # a key names its pair


def test_one_version_per_site_needs_no_filter() -> None:
    assert resolve_scope([SourceVersion("b.test", "b.test", "latest")], None, None).keys is None
    assert resolve_scope([], None, None).keys is None


def test_unknown_versions_and_sources_are_refused_with_what_is_indexed() -> None:
    with pytest.raises(ScopeError, match=r"indexed versions: 2\.0, 1\.0") as refused:
        resolve_scope(ENTRIES, "a.test", "3.0")
    assert refused.value.fields == {"source": "a.test", "version": "3.0", "indexed_versions": ["2.0", "1.0"]}
    with pytest.raises(ScopeError, match=r"available sources: a\.test, b\.test"):
        resolve_scope(ENTRIES, "c.test", None)
    with pytest.raises(ScopeError, match="needs a source"):
        resolve_scope(ENTRIES, None, "1.0")
    with pytest.raises(ScopeError, match="may hold only"):
        resolve_scope(ENTRIES, "a.test", "1.0/../x")


def test_hits_are_labelled_with_site_and_version() -> None:
    scope = resolve_scope(ENTRIES, "a.test", "1.0")
    hit = SearchHit(1, "https://a.test/1.0/", "a.test@1.0", "t", "", 0, "text")
    scope.label(hit)
    assert (hit.source_id, hit.version) == ("a.test", "1.0")


def _info(key: str, site: str, version: str, pages: int, crawled: int) -> SourceInfo:
    when = datetime(2026, 1, crawled, tzinfo=UTC)
    return SourceInfo(key, f"about {version}", pages, pages * 2, pages * 10, 0, "m", 16, when, when, site, version)


def test_sites_list_their_versions_newest_first_with_totals() -> None:
    [site] = sites_view([_info("a.test@1.0", "a.test", "1.0", 3, 1), _info("a.test@2.0", "a.test", "2.0", 4, 2)])
    assert (site["source_id"], site["default_version"], site["summary"]) == ("a.test", "2.0", "about 2.0")
    assert [v["version"] for v in site["versions"]] == ["2.0", "1.0"]
    assert (site["pages"], site["chunks"], site["words"]) == (7, 14, 70)
    assert site["last_crawled"].startswith("2026-01-02") and site["created_at"].startswith("2026-01-01")
