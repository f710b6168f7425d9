"""Readers on their own: hostile or broken input fails alone, quickly, with a reason."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import anyio

from crawlrag.config import Settings
from crawlrag.crawl.results import CrawlRequest, PageFailure
from crawlrag.local import crawl_local
from crawlrag.local.archives import member_path
from crawlrag.local.markup import mdx_to_markdown, notebook_to_markdown, rst_to_markdown
from crawlrag.local.openapi import load_spec, spec_sections
from crawlrag.local.readers import read_documents
from crawlrag.models import Page


def test_markup_regexes_stay_linear_on_hostile_lines() -> None:
    started = time.perf_counter()
    mdx_to_markdown("<a" + " " * 50_000 + "x")
    rst_to_markdown("`" + " " * 50_000 + "x")
    rst_to_markdown(":ref:`" + " " * 50_000)
    assert time.perf_counter() - started < 5


def test_notebook_and_rst_details() -> None:
    text = notebook_to_markdown(b'{"cells": [{"cell_type": "raw", "source": "rawword"}], "metadata": {}}')
    assert text == ""
    md = rst_to_markdown("=====\nTitle\n=====\n\nSub\n~~~\n\nSee `the docs <https://x.example/>`_ and :func:`open`.\n")
    assert md.startswith("# Title") and "## Sub" in md
    assert "[the docs](https://x.example/)" in md and "`open`" in md


def test_openapi_alias_bomb_is_bounded() -> None:
    lines = ["openapi: 3.0.0", "info: {title: Bomb, version: '1'}", "components:", "  schemas:"]
    lines.append("    L0: &L0 {type: object, properties: {a: {type: string}}}")
    for level in range(1, 9):
        props = ", ".join(f"p{i}: *L{level - 1}" for i in range(20))
        lines.append(f"    L{level}: &L{level} {{type: object, properties: {{{props}}}}}")
    lines += ["paths:", "  /x:", "    get:", "      responses:", "        '200':", "          description: ok"]
    lines += ["          content: {application/json: {schema: *L8}}"]
    spec = load_spec("\n".join(lines).encode(), ".yaml")
    assert spec is not None
    started = time.perf_counter()
    sections = spec_sections(spec, 1000)
    assert time.perf_counter() - started < 5
    assert len(sections) == 2 and len(sections[1].markdown) <= 1000
    assert load_spec(b'{"name": "x"}', ".json") is None and load_spec(b"openapi: [", ".yaml") is None


def test_member_paths() -> None:
    assert member_path("a/./b/../c.md") == PurePosixPath("a/c.md")
    for bad in ("../x.md", "/etc/passwd", "a/../../x.md", "C:\\x.md", "..\\x.md"):
        assert member_path(bad) is None, bad


def test_broken_files_fail_alone(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "broken.ipynb").write_text("{not json")
    (docs / "fine.md").write_text("# Fine\n\nfine text\n")
    with zipfile.ZipFile(docs / "nested.zip", "w") as archive:  # archives inside folders are not opened
        archive.writestr("x.md", "# X\n")
    assert read_documents(PurePosixPath("a.json"), "file:///a.json", b"[]", chunk_size=1000) == []

    async def collect() -> list[object]:
        settings = make_settings(allowed_paths=[str(tmp_path)])
        return [item async for item in crawl_local(str(docs), settings, CrawlRequest(url=str(docs)))]

    results = anyio.run(collect)
    pages = [r for r in results if isinstance(r, Page)]
    failures = {r.url.rsplit("/", 1)[-1]: r.reason for r in results if isinstance(r, PageFailure)}
    assert [p.title for p in pages] == ["Fine"]
    assert set(failures) == {"broken.pdf", "broken.ipynb"}
    assert all(reason.startswith("cannot read broken.") for reason in failures.values())
