"""HTML and text documents to title, main-content markdown and links."""

from __future__ import annotations

import pytest

from crawlrag.crawl.extract import decode_html, extract_html, extract_text, needs_rendering

URL = "https://docs.example.com/guide/page.html"


def _doc(body: str, head: str = "<title>Page title</title>") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


CHROME = (
    '<header><nav><a href="/">Home</a> NAV-TEXT</nav></header>'
    '<aside class="sidebar"><a href="/side.html">Side</a> SIDEBAR-TEXT</aside>'
)
FOOTER = '<footer>FOOTER-TEXT <a href="/legal.html">Legal</a></footer>'


def test_main_element_is_the_content() -> None:
    html = _doc(f"{CHROME}<main><h1>Hello</h1><p>Main text here.</p></main>{FOOTER}")
    result = extract_html(html, URL)
    assert result.title == "Page title"
    assert "# Hello" in result.markdown
    assert "Main text here." in result.markdown
    for chrome in ("NAV-TEXT", "SIDEBAR-TEXT", "FOOTER-TEXT"):
        assert chrome not in result.markdown
    # Navigation is dropped from the markdown but its links still lead the crawler on.
    assert "https://docs.example.com/side.html" in result.links
    assert "https://docs.example.com/legal.html" in result.links


def test_role_main_is_used_when_there_is_no_main_element() -> None:
    html = _doc(
        '<div class="related" role="navigation">RELATED-NAV</div>'
        '<div class="document"><div class="body" role="main"><h1>Sphinx page</h1><p>Body text.</p></div></div>'
        '<div class="sphinxsidebar" role="navigation">SPHINX-SIDEBAR</div><div class="footer">FOOT</div>'
    )
    markdown = extract_html(html, URL).markdown
    assert markdown.startswith("# Sphinx page")
    assert "RELATED-NAV" not in markdown and "SPHINX-SIDEBAR" not in markdown and "FOOT" not in markdown


def test_single_article_inside_main_wins_over_main() -> None:
    html = _doc(
        '<main><div class="md-sidebar"><nav>TOC-NAV</nav><div>SIDEBAR-JUNK</div></div>'
        "<article><h1>Article</h1><p>Article text.</p></article></main>"
    )
    markdown = extract_html(html, URL).markdown
    assert markdown.startswith("# Article")
    assert "SIDEBAR-JUNK" not in markdown and "TOC-NAV" not in markdown


def test_many_articles_keep_the_whole_main() -> None:
    html = _doc("<main><h1>Blog</h1><article><p>First post.</p></article><article><p>Second post.</p></article></main>")
    markdown = extract_html(html, URL).markdown
    assert "First post." in markdown and "Second post." in markdown and "# Blog" in markdown


def test_body_fallback_drops_site_chrome() -> None:
    html = _doc(f'{CHROME}<div class="content"><h2>Plain page</h2><p>Only divs here.</p></div>{FOOTER}')
    markdown = extract_html(html, URL).markdown
    assert "Only divs here." in markdown
    for chrome in ("NAV-TEXT", "SIDEBAR-TEXT", "FOOTER-TEXT"):
        assert chrome not in markdown


def test_code_blocks_are_fenced_and_scripts_dropped() -> None:
    html = _doc(
        "<main><p>Example:</p><pre><code>for i in range(3):\n    print(i)\n</code></pre>"
        "<script>var SCRIPT_TEXT = 1;</script><style>.x{}</style></main>"
    )
    markdown = extract_html(html, URL).markdown
    assert "```\nfor i in range(3):\n    print(i)\n" in markdown
    assert "SCRIPT_TEXT" not in markdown


def test_heading_permalinks_are_removed() -> None:
    html = _doc(
        '<main><h2 id="x">Section<a class="headerlink" href="#x" title="Link">¶</a></h2>'
        '<p>See <a href="#x">the section</a>.</p></main>'
    )
    markdown = extract_html(html, URL).markdown
    assert "¶" not in markdown
    assert "the section" in markdown


def test_links_are_absolute_normalised_and_unique() -> None:
    html = _doc(
        '<main><a href="../api/">API</a><a href="../api/#x">API again</a><a href="HTTPS://Other.org/">Other</a>'
        '<a href="mailto:a@b.c">Mail</a><a href="javascript:void(0)">JS</a><a href="#local">Local</a>'
        '<map><area href="/area.html"></map></main>'
    )
    assert extract_html(html, URL).links == (
        "https://docs.example.com/api/",
        "https://other.org/",
        "https://docs.example.com/area.html",
    )


def test_base_href_is_respected() -> None:
    html = _doc('<main><a href="page2.html">next</a></main>', head='<base href="https://docs.example.com/v2/">')
    assert extract_html(html, URL).links == ("https://docs.example.com/v2/page2.html",)


def test_title_falls_back_to_first_h1() -> None:
    assert extract_html(_doc("<main><h1>  Only   heading </h1></main>", head=""), URL).title == "Only heading"
    assert extract_html(_doc("<main><p>nothing</p></main>", head=""), URL).title == ""


def test_empty_and_broken_documents() -> None:
    assert extract_html("", URL).markdown == ""
    assert extract_html("   ", URL).markdown == ""
    xhtml = '<?xml version="1.0" encoding="utf-8"?><html><body><main><p>XHTML text</p></main></body></html>'
    assert "XHTML text" in extract_html(xhtml, URL).markdown


def test_needs_rendering() -> None:
    shell = _doc('<div id="root"></div><script src="/app.js"></script>')
    assert needs_rendering(shell, extract_html(shell, URL).markdown)
    loading = _doc('<div id="root">Loading…</div><script>start()</script>')
    assert needs_rendering(loading, extract_html(loading, URL).markdown)
    static = _doc("<main><p>A static page with plenty of words in it.</p></main><script>track()</script>")
    assert not needs_rendering(static, extract_html(static, URL).markdown)
    empty_without_scripts = _doc("<div></div>")
    assert not needs_rendering(empty_without_scripts, "")


@pytest.mark.parametrize(
    ("body", "charset", "expected"),
    [
        ("café".encode(), None, "café"),
        ("café".encode("latin-1"), "iso-8859-1", "café"),
        (b'<meta charset="windows-1252"><p>caf\xe9</p>', None, '<meta charset="windows-1252"><p>café</p>'),
        (b"\xef\xbb\xbfbom", "latin-1", "bom"),  # a BOM beats the header
        (b"x", "no-such-charset", "x"),
        (b"caf\xff", None, "caf\ufffd"),
    ],
)
def test_decode_html(body: bytes, charset: str | None, expected: str) -> None:
    assert decode_html(body, charset) == expected


def test_extract_text_keeps_text_and_finds_links() -> None:
    text = (
        '\ufeff# Project\n\n> Summary\n\n- [Guide](/guide/): start\n- [API](api/index.md "API docs")\n'
        "See https://docs.example.com/faq.html, or <https://other.org/x>.\n"
    )
    result = extract_text(text, "https://docs.example.com/llms.txt")
    assert result.title == "Project"
    assert result.markdown == text.strip().lstrip("\ufeff")
    assert result.links == (
        "https://docs.example.com/guide/",
        "https://docs.example.com/api/index.md",
        "https://docs.example.com/faq.html",
        "https://other.org/x",
    )


def test_extract_text_title_fallbacks() -> None:
    assert extract_text("Release notes\n\nmore", "https://x.org/notes.txt").title == "Release notes"
    assert extract_text("x" * 500, "https://x.org/dir/long.txt").title == "long.txt"
