"""Markdown of real generator output keeps identifiers, signatures, code languages, tables, admonitions, terms."""

from __future__ import annotations

from pathlib import Path

import pytest
from generators import CHROME_MARKERS, DOCBOOK_SIGNATURES, IDENTIFIERS, SPHINX_SIGNATURES

from crawlrag.chunking import chunk_markdown
from crawlrag.crawl.extract import extract_html
from crawlrag.models import Chunk
from crawlrag.summaries import summarize_source


def chunks_of(path: Path, url: str = "http://docs.test/page.html") -> list[Chunk]:
    extracted = extract_html(path.read_text(encoding="utf-8"), url)
    return chunk_markdown(extracted.markdown, url=url, title=extracted.title)


def text_of(chunks: list[Chunk]) -> str:
    return "\n\n".join(chunk.content for chunk in chunks)


def test_sphinx_signatures_and_identifiers_survive_exactly(sphinx_html: Path) -> None:
    chunks = chunks_of(sphinx_html / "api.html")
    text = text_of(chunks)
    for signature in SPHINX_SIGNATURES:
        assert f"`{signature}`" in text, signature
    for identifier in IDENTIFIERS:
        assert identifier in text, identifier
    assert "_class" not in text and "*args*" not in text and "\\_" not in text  # no emphasis debris or escapes
    assert "¶" not in text and "{#" not in text  # permalinks and anchor markers are not content
    # Admonitions keep their titles, the generic one its own.
    assert "Note\n\nWidgets are not thread-safe" in text
    assert "Sizing rules\n\nSizes are in pixels" in text


def test_sphinx_code_tables_and_definition_lists(sphinx_html: Path) -> None:
    text = text_of(chunks_of(sphinx_html / "guide.html"))
    assert '```python\nfrom shapes import Widget\nwidget = Widget("a", size=4)\n```' in text
    assert "| Option | Default |" in text and "| colour | red" in text
    assert "widget\n\nA thing drawn on the screen." in text
    assert "gadget\n\nA thing that does something useful." in text


def test_mkdocs_material(mkdocs_html: Path) -> None:
    chunks = chunks_of(mkdocs_html / "guide" / "index.html", "http://docs.test/guide/")
    text = text_of(chunks)
    for identifier in ("Gizmo.__init__", *IDENTIFIERS[1:]):
        assert f"`{identifier}`" in text, identifier
    assert "```python\nfrom gizmo import Gizmo\ncounter = Gizmo(start=1)\n```" in text
    assert "Mind the gap\n\nCounting starts at one." in text
    assert "| start   | 1       |" in text
    assert "Counter\n\nSomething that counts." in text
    assert {chunk.anchor for chunk in chunks} >= {"guide", "settings"}


def test_docbook_javadoc_and_rustdoc_signatures(docbook_html: Path) -> None:
    chunks = chunks_of(docbook_html / "reference.html")
    text = text_of(chunks)
    for signature in DOCBOOK_SIGNATURES:
        assert signature in text, signature
    # A DocBook note's title stays a title of the note, not a heading that cuts the section in two.
    assert "**Note**\n\nThe file is created when it does not exist." in text
    assert not any("Note" in chunk.headings for chunk in chunks)
    assert "`SQLITE_BUSY`\n\nThe database is locked." in text
    assert [chunk.anchor for chunk in chunks][:1] == ["ref"]


@pytest.mark.parametrize("site", ["sphinx_html", "mkdocs_html", "docbook_html"])
def test_no_chrome_in_chunks(site: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(site)
    pages = sorted(root.rglob("*.html"))
    assert pages
    for page in pages:
        text = text_of(chunks_of(page))
        for marker in CHROME_MARKERS:
            assert marker not in text, (page, marker)


def test_python_docs_signatures(pydocs: Path) -> None:
    csv = chunks_of(pydocs / "library" / "csv.html", "http://docs.test/library/csv.html")
    signature = "class csv.DictWriter(f, fieldnames, restval='', extrasaction='raise', dialect='excel', *args, **kwds)"
    [chunk] = [chunk for chunk in csv if signature in chunk.content]
    assert chunk.content.startswith(f"`{signature}`")  # the signature leads the chunk that describes it
    assert chunk.anchor == "csv.DictWriter"
    datamodel = text_of(chunks_of(pydocs / "reference" / "datamodel.html"))
    assert "`object.__init__(self[, ...])`" in datamodel
    assert "__init__" in text_of(chunks_of(pydocs / "library" / "json.html"))


def test_summaries_keep_identifiers(pydocs: Path) -> None:
    extracted = extract_html((pydocs / "library" / "json.html").read_text(), "http://docs.test/library/json.html")
    assert "Lib/json/__init__.py" in extracted.markdown
    markdown = (
        "# json\n\nThe code is in [Lib/json/__init__.py](x): call `__init__(*args, **kwargs)` on _private a_b_c, "
        "*really*, and **do** it."
    )
    summary = summarize_source("docs.test", "json", markdown)
    assert summary == (
        "json: The code is in Lib/json/__init__.py: call __init__(*args, **kwargs) on _private a_b_c, really, "
        "and do it."
    )
