"""What kind of page a document is, from its structure and wording, never from one site's file names.

* `index`: a table of contents, a general, module or back-of-book index, a search page, a tag, category or
  archive listing. Its text is (almost) all short link-led entries, list items or table rows, and it has next
  to no prose paragraphs; or it is a search form with little text. Its links are followed; it stores no chunks.
* `changelog`: release notes, "what's new", changelogs and release announcements: named so in the title or
  the first heading, or most of its headings are version numbers. Stored and searchable.
* `content`: everything else.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

import lxml.html

from crawlrag.models import PageKind

# Text is attributed to its nearest element of these; a table row is one entry, whatever its cells.
_BLOCKS = frozenset({"p", "li", "tr", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote"})
_PROSE = frozenset({"p", "dd", "blockquote", "li"})
_ENTRY_MAX_CHARS = 160  # an index entry is a few words and a link; longer is description, i.e. content
_PROSE_MIN_WORDS = 12
_INDEX_MIN_ENTRIES = 10
_INDEX_MIN_ENTRIES_WITHOUT_PROSE = 1
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_INDEX_MIN_ENTRY_SHARE = 0.6
_INDEX_MAX_PROSE_SHARE = 0.2
_SEARCH_PAGE_MAX_CHARS = 1500
_INDEX_MIN_LINKS = 15
_INDEX_MIN_LINKED_WORD_SHARE = 0.6
_WORD_CHAR = re.compile(r"\w")

_CHANGELOG_NAME = re.compile(
    r"\b(what[’']?s\s+new|release\s+notes?|change\s*log|changes\s+in\s+(?:version\s+)?v?\d|"
    r"(?:release|version)\s+history|news\s+for\s+v?\d)",
    re.IGNORECASE,
)
_ANNOUNCEMENT = re.compile(r"\b(announc\w*|released?|introducing|is\s+out)\b", re.IGNORECASE)
_VERSION = re.compile(r"\bv?\d+\.\d+(?:\.\d+)*\b")
# "3.11.2", "v2.0.0 (2023-05-01)", "Version 1.4", "Python 3.12.0 final"; not a numbered section ("3.1. Objects").
_VERSION_HEADING = re.compile(
    r"^\W*(?:[A-Za-z][\w-]*\s+)?(?:v(?:ersion)?\s*)?\d+(?:\.\d+)+(?![.\d])(?P<rest>.*)$", re.IGNORECASE
)
_VERSION_HEADING_MAX_WORDS = 4
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_MIN_VERSION_HEADINGS = 3
_VERSION_HEADING_SHARE = 0.4


def html_page_kind(root: lxml.html.HtmlElement, title: str) -> PageKind:
    """The kind of an HTML page from its content element (site chrome already removed) and title."""
    headings = [" ".join(h.text_content().split()) for h in root.iter("h1", "h2", "h3", "h4")]
    if _is_changelog(title, headings):
        return "changelog"
    return "index" if _is_index(root) else "content"


def text_page_kind(markdown: str, title: str) -> PageKind:
    """The kind of a text or markdown file: a changelog or content (an index needs HTML structure to tell)."""
    headings = [match.group(1) for match in _MARKDOWN_HEADING.finditer(markdown)]
    return "changelog" if _is_changelog(title, headings) else "content"


def _is_changelog(title: str, headings: list[str]) -> bool:
    names = [title, *headings[:1]]
    if any(_CHANGELOG_NAME.search(name) for name in names):
        return True
    if any(_ANNOUNCEMENT.search(name) and _VERSION.search(name) for name in names):
        return True
    versions = sum(1 for heading in headings if _is_version_heading(heading))
    return versions >= _MIN_VERSION_HEADINGS and versions >= _VERSION_HEADING_SHARE * len(headings)


def _is_version_heading(heading: str) -> bool:
    match = _VERSION_HEADING.match(heading)
    return match is not None and len(match.group("rest").split()) <= _VERSION_HEADING_MAX_WORDS


def _is_index(root: lxml.html.HtmlElement) -> bool:
    text: dict[lxml.html.HtmlElement | None, list[str]] = defaultdict(list)
    linked: set[lxml.html.HtmlElement | None] = set()
    for node in root.xpath(".//text()"):
        holder = node.getparent()
        if node.is_tail and holder is not None:  # text after an element belongs to the element's parent
            holder = holder.getparent()
        block, in_link = _block_of(holder, root)
        text[block].append(str(node))
        if in_link:
            linked.add(block)
    sizes = {block: len(" ".join("".join(parts).split())) for block, parts in text.items()}
    # Headings (a title, letters A, B, C...) do not decide what the body is made of.
    total = sum(size for block, size in sizes.items() if block is None or block.tag not in _HEADING_TAGS)
    if not total:
        return False
    if _has_search_form(root) and total <= _SEARCH_PAGE_MAX_CHARS:
        return True
    entries = [b for b in linked if b is not None and b.tag != "pre" and 0 < sizes[b] <= _ENTRY_MAX_CHARS]
    entry_chars = sum(sizes[b] for b in entries)
    prose_chars = sum(
        sizes[b]
        for b in _prose_blocks(text)
        if b not in linked or not _mostly_links(b)  # a paragraph of words, not a run of links
    )
    if prose_chars > _INDEX_MAX_PROSE_SHARE * total:
        return False
    # Without a single paragraph of prose, a few entries make a (small) index; with some prose it takes more.
    enough = _INDEX_MIN_ENTRIES if prose_chars else _INDEX_MIN_ENTRIES_WITHOUT_PROSE
    if len(entries) >= enough and entry_chars >= _INDEX_MIN_ENTRY_SHARE * total:
        return True
    # A jump bar of links in one paragraph ("A | B | C ..."): most of the words are links.
    links = [a for a in root.iter("a") if a.get("href")]
    words = len(_WORD_CHAR.findall(root.text_content()))
    linked_words = sum(len(_WORD_CHAR.findall(a.text_content())) for a in links)
    return len(links) >= _INDEX_MIN_LINKS and linked_words >= _INDEX_MIN_LINKED_WORD_SHARE * words


def _block_of(
    element: lxml.html.HtmlElement | None, root: lxml.html.HtmlElement
) -> tuple[lxml.html.HtmlElement | None, bool]:
    """The nearest block element around a text node (None: loose text), and whether it sits in a link."""
    in_link = False
    block = None
    while element is not None:
        if element.tag == "a" and element.get("href"):
            in_link = True
        if block is None and element.tag in _BLOCKS:
            block = element
        if element is root:
            break
        element = element.getparent()
    return block, in_link


def _prose_blocks(text: dict[lxml.html.HtmlElement | None, list[str]]) -> Iterable[lxml.html.HtmlElement]:
    for block, parts in text.items():
        if block is not None and block.tag in _PROSE and len("".join(parts).split()) >= _PROSE_MIN_WORDS:
            yield block


def _mostly_links(block: lxml.html.HtmlElement) -> bool:
    """Half or more of the block's letters and digits are link text (separators like "|" do not count)."""
    linked = sum(len(_WORD_CHAR.findall(a.text_content())) for a in block.iter("a") if a.get("href"))
    return linked >= 0.5 * len(_WORD_CHAR.findall(block.text_content()))


def _has_search_form(root: lxml.html.HtmlElement) -> bool:
    for form in root.iter("form"):
        for field in form.iter("input"):
            if field.get("type", "text").lower() in ("text", "search"):
                return True
    return False
