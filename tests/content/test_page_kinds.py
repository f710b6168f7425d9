"""Page kinds from structure: indexes, changelogs and content, on several generators' output."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawlrag.crawl.extract import extract_html, extract_text


def kind_of(path: Path) -> str:
    return extract_html(path.read_text(encoding="utf-8", errors="replace"), "http://docs.test/page.html").kind


@pytest.mark.parametrize(
    ("page", "kind"),
    [
        ("contents.html", "index"),
        ("genindex.html", "index"),
        ("genindex-A.html", "index"),
        ("genindex-all.html", "index"),
        ("py-modindex.html", "index"),
        ("search.html", "index"),
        ("library/csv.html", "content"),
        ("library/json.html", "content"),
        ("reference/datamodel.html", "content"),  # numbered sections ("3.1. Objects") are not versions
        ("glossary.html", "content"),  # a definition list of prose, not of links
        ("library/functions.html", "content"),  # opens with a table of links, then explains each
        ("whatsnew/3.7.html", "changelog"),
        ("whatsnew/index.html", "changelog"),
    ],
)
def test_python_docs(pydocs: Path, page: str, kind: str) -> None:
    assert kind_of(pydocs / page) == kind


@pytest.mark.parametrize(
    ("page", "kind"),
    [
        ("genindex.html", "index"),
        ("py-modindex.html", "index"),
        ("search.html", "index"),
        ("api.html", "content"),
        ("guide.html", "content"),
        ("index.html", "content"),
        ("changes.html", "changelog"),
    ],
)
def test_sphinx(sphinx_html: Path, page: str, kind: str) -> None:
    assert kind_of(sphinx_html / page) == kind


@pytest.mark.parametrize(
    ("page", "kind"),
    [("index.html", "content"), ("guide/index.html", "content"), ("changelog/index.html", "changelog")],
)
def test_mkdocs(mkdocs_html: Path, page: str, kind: str) -> None:
    assert kind_of(mkdocs_html / page) == kind


@pytest.mark.parametrize(
    ("page", "kind"), [("ix01.html", "index"), ("reference.html", "content"), ("announce.html", "changelog")]
)
def test_docbook_and_announcements(docbook_html: Path, page: str, kind: str) -> None:
    assert kind_of(docbook_html / page) == kind


def test_text_files() -> None:
    changelog = "# Changelog\n\n## 1.2.0\n\nFixed things.\n\n## 1.1.0\n\nAdded things.\n"
    assert extract_text(changelog, "http://docs.test/CHANGES.md").kind == "changelog"
    versions = "# Project history\n\n## v3.0.0 (2024-01-02)\n\nx\n\n## v2.1.0\n\ny\n\n## v2.0.0\n\nz\n"
    assert extract_text(versions, "http://docs.test/HISTORY.md").kind == "changelog"
    guide = "# Install\n\n## Python 3.11\n\nUse pip.\n\n## Windows\n\nUse the installer.\n"
    assert extract_text(guide, "http://docs.test/install.md").kind == "content"


def test_tag_listing_is_an_index() -> None:
    entries = "".join(f'<li><a href="/posts/{i}.html">Post number {i}</a></li>' for i in range(12))
    html = f"<html><head><title>Tag: python</title></head><body><main><h1>Tag: python</h1><ul>{entries}</ul></main>"
    assert extract_html(html + "</body></html>", "http://docs.test/tags/python/").kind == "index"
    prose = "<p>" + "This guide explains every step of the setup in plain words for new users. " * 4 + "</p>"
    html = f"<html><body><main><h1>Setup</h1>{prose}<ul>{entries[:200]}</ul></main></body></html>"
    assert extract_html(html, "http://docs.test/setup.html").kind == "content"
