"""HTML-to-markdown converters side by side: speed and fidelity on real generator output (the Python docs).

    python bench/convert_html.py [--docs DIR] [--pages N] [--extra-dir DIR ...] [--json]

Every converter gets the same content element of each page (crawlrag's `<main>`/`<article>`/`<body>` choice,
chrome removed). `crawl4ai` is what crawlrag used before (DefaultMarkdownGenerator on the raw content);
`h2m+prep` is what it uses now (`html_prep.prepare_content`, then `html-to-markdown`); `h2m`, `markdownify+prep`
and `crawl4ai+prep` separate the converter from the preparation. Fidelity, summed over the pages:

* `sigs`: Sphinx API signatures (`dt.sig`) whose plain text appears verbatim in the markdown;
* `idents`: inline code literals holding `_`, `*` or `<` (`__init__`, `**kwargs`, `<T>`) found verbatim;
* `code_lang`: highlighted code blocks whose fence names a language;
* `tables`: markdown table separator rows, against the `<table>`s in the HTML.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lxml.html

from crawlrag.crawl.extract import _CONVERSION, _content_root, html_to_markdown_text
from crawlrag.crawl.html_prep import prepare_content

DOCS = Path("/usr/share/doc/python3.11/html")
_SPACE = re.compile(r"\s+")
_FENCE_WITH_LANGUAGE = re.compile(r"^\s*```+\s*[A-Za-z]", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}", re.MULTILINE)


def _crawl4ai(html: str) -> str:
    from crawl4ai.markdown_generation_strategy import DefaultMarkdownGenerator

    return DefaultMarkdownGenerator().generate_markdown(html, base_url="http://x/", citations=False).raw_markdown


def _h2m(html: str) -> str:
    import html_to_markdown

    return html_to_markdown.convert(html, _CONVERSION).content or ""


def _markdownify(html: str) -> str:
    import markdownify

    return str(markdownify.markdownify(html, heading_style="ATX", code_language_callback=_language_of))


def _language_of(element: Any) -> str | None:
    for name in element.get("class", []) if element.name == "code" else []:
        if name.startswith("language-"):
            return str(name.removeprefix("language-"))
    code = element.find("code") if element.name == "pre" else None
    return _language_of(code) if code is not None else None


CONVERTERS: dict[str, tuple[Callable[[str], str], bool]] = {
    "crawl4ai": (_crawl4ai, False),
    "crawl4ai+prep": (_crawl4ai, True),
    "h2m": (_h2m, False),
    "h2m+prep": (html_to_markdown_text, True),
    "markdownify+prep": (_markdownify, True),
}


def _facts(root: lxml.html.HtmlElement) -> dict[str, Any]:
    """What a faithful conversion must keep, read from the HTML."""
    signatures = []
    for dt in root.cssselect("dt.sig"):
        text = _SPACE.sub(" ", dt.text_content()).replace("¶", "").strip()
        if text:
            signatures.append(text)
    idents = [
        text
        for code in root.cssselect("code.literal, code.docutils, code")
        if (text := _SPACE.sub(" ", code.text_content()).strip()) and re.search(r"[_*<]", text) and len(text) < 80
    ]
    return {
        "sigs": signatures,
        "idents": idents,
        "code": len(root.cssselect("div[class*='highlight-'] pre, div[class*='language-'] pre")),
        "tables": len(root.cssselect("table")),
    }


def run(pages: list[Path]) -> dict[str, dict[str, Any]]:
    roots = []
    for path in pages:
        doc = lxml.html.document_fromstring(path.read_text(encoding="utf-8", errors="replace"))
        root = _content_root(doc)
        if root is not None:
            roots.append(root)
    facts = [_facts(root) for root in roots]
    # Converters take turns page by page, so a busy machine slows them all alike.
    seconds = dict.fromkeys(CONVERTERS, 0.0)
    markdown: dict[str, list[str]] = {name: [] for name in CONVERTERS}
    for convert, _ in CONVERTERS.values():
        convert("<p>warm up</p>")  # imports and one-time set-up are not conversion time
    for root in roots:
        for name, (convert, prep) in CONVERTERS.items():
            element = copy.deepcopy(root)  # preparation works in place; copying is not timed
            started = time.perf_counter()
            if prep:  # the preparation is part of the conversion's cost, and so is serialising the element
                prepare_content(element)
            markdown[name].append(convert(lxml.html.tostring(element, encoding="unicode")))
            seconds[name] += time.perf_counter() - started
    results: dict[str, dict[str, Any]] = {}
    for name in CONVERTERS:
        pairs = list(zip(facts, markdown[name], strict=True))

        def score(found: Callable[[dict[str, Any], str], int], wanted: Callable[[dict[str, Any]], int]) -> str:
            return f"{sum(found(f, md) for f, md in pairs)}/{sum(wanted(f) for f, _ in pairs)}"  # noqa: B023

        results[name] = {
            "pages": len(roots),
            "seconds": round(seconds[name], 2),
            "pages_per_s": round(len(roots) / seconds[name], 1),
            "sigs": score(lambda f, md: sum(s in md for s in f["sigs"]), lambda f: len(f["sigs"])),
            "idents": score(lambda f, md: sum(i in md for i in f["idents"]), lambda f: len(f["idents"])),
            "code_lang": score(
                lambda f, md: min(f["code"], len(_FENCE_WITH_LANGUAGE.findall(md))), lambda f: f["code"]
            ),
            "tables": score(lambda f, md: min(f["tables"], len(_TABLE_RULE.findall(md))), lambda f: f["tables"]),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--pages", type=int, default=100, help="the first N library/ and reference/ pages")
    parser.add_argument("--extra-dir", type=Path, action="append", default=[], help="more HTML (all *.html)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pages = sorted([*(args.docs / "library").glob("*.html"), *(args.docs / "reference").glob("*.html")])
    pages = pages[: args.pages]
    for extra in args.extra_dir:
        pages += sorted(extra.rglob("*.html"))
    results = run(pages)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    columns = ["pages", "seconds", "pages_per_s", "sigs", "idents", "code_lang", "tables"]
    print("| converter | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(str(row[c]) for c in columns) + " |")
    baseline = results["crawl4ai"]["seconds"]
    print(f"\nh2m+prep is {baseline / results['h2m+prep']['seconds']:.1f}x faster than crawl4ai on these pages")


if __name__ == "__main__":
    sys.exit(main())
