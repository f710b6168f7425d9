"""Turn a fetched document into what the index needs: title, markdown of the main content, links, kind.

The page's own structure decides what "main content" is: the first `<main>` or `[role=main]` element (or
the only `<article>` inside it), else an `<article>`, else `<body>` with its header, navigation, sidebars and
footer removed. Links are collected from the whole page before anything is removed, because navigation is how
the crawler finds the rest of the site. The content is normalised (`html_prep`: signatures, code languages,
heading anchors) and converted by `html-to-markdown`, chosen by measurement over crawl4ai's
`DefaultMarkdownGenerator` and markdownify: several times faster on the Python docs, and it keeps identifiers
such as `__init__` and `<T>`, code languages, tables and definition lists intact. The page's `<link
rel=canonical>` and `<meta name=robots>` are reported for the crawler to act on.
All functions here are synchronous and CPU-bound; the fetcher runs them in a worker thread.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import html_to_markdown
import lxml.etree
import lxml.html

from crawlrag.crawl.html_prep import prepare_content
from crawlrag.crawl.page_kind import html_page_kind, text_page_kind
from crawlrag.crawl.urls import same_site, try_normalize_url
from crawlrag.models import PageKind

# Bumped whenever conversion or chunking changes what is stored for an unchanged page; part of the per-page
# fingerprint, so the next crawl re-processes pages converted by an older version.
EXTRACTION_VERSION = 2

EXTRACTION_VERSION = 1  # bump when extraction changes what stored pages hold: their index fingerprint changes
# Removed from the chosen content element: site chrome that themes put inside <main> too.
_CHROME_IN_CONTENT = "nav, [role=navigation], footer, script, style, noscript, template, [role=search]"
# Removed as well when there is no content element and <body> is used.
# DocBook XSL marks its navigation bars `navheader`/`navfooter`.
_CHROME_IN_BODY = (
    _CHROME_IN_CONTENT
    + ", header, aside, [role=banner], [role=contentinfo], [role=complementary], .navheader, .navfooter"
)
_MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+")
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_WORD = re.compile(r"[^\W_]{2,}")
_MIN_WORDS_WITHOUT_RENDERING = 5
_MAX_TITLE_CHARS = 120
_CONVERSION = html_to_markdown.ConversionOptions(
    extract_metadata=False,
    escape_asterisks=False,
    escape_underscores=False,
    escape_misc=False,
    code_block_style="backticks",
    heading_style="atx",
    # The single-pass scanner, which hands a page it cannot handle to the full parser by itself: about twice as
    # fast on documentation pages, with the same output apart from the padding of table columns.
    tier_strategy="tier1",
)
# Control characters (NUL, terminal escape sequences, C1) have no place in indexed text and can hide or rewrite
# what a terminal shows; Unicode "tag" characters are invisible and a known way to smuggle instructions to models.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\U000e0000-\U000e007f]")


@dataclass(frozen=True, slots=True)
class Extracted:
    title: str
    markdown: str
    links: tuple[str, ...]  # absolute, normalised http(s) URLs in document order, without duplicates
    kind: PageKind = "content"
    canonical: str | None = None  # the same-site URL of `<link rel=canonical>`, normalised
    noindex: bool = False  # `<meta name=robots content=noindex>`: follow the links, store nothing


class ExtractionError(Exception):
    """The markdown converter failed on this document."""


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode by BOM, HTTP charset or <meta charset> (in that order), else as UTF-8 with replacement."""
    for candidate in (_bom_encoding(body), charset, _meta_charset(body)):
        if candidate:
            try:
                return body.decode(codecs.lookup(candidate).name, errors="replace").lstrip("\ufeff")
            except LookupError:
                continue
    return body.decode("utf-8", errors="replace").lstrip("\ufeff")


def extract_html(html: str, url: str) -> Extracted:
    """Title, main-content markdown and links of an HTML document fetched from `url`."""
    try:
        doc = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html, count=1))
    except (lxml.etree.ParserError, ValueError):
        return Extracted(title="", markdown="", links=())
    base = _base_url(doc, url)
    noindex, nofollow = _robots(doc)
    links = () if nofollow else _links(doc, base)
    title = _title(doc)
    canonical = _canonical(doc, base)
    content = _content_root(doc)
    if content is None:
        return Extracted(title=title, markdown="", links=links, canonical=canonical, noindex=noindex)
    kind = html_page_kind(content, title)
    prepare_content(content)
    markdown = html_to_markdown_text(lxml.html.tostring(content, encoding="unicode", with_tail=False), base)
    return Extracted(
        title=clean_text(title),
        markdown=_tidy(clean_text(markdown)),
        links=links,
        kind=kind,
        canonical=canonical,
        noindex=noindex,
    )


def html_to_markdown_text(content_html: str, base_url: str | None = None) -> str:
    """Markdown of an HTML fragment (already `prepare_content`ed), links made absolute against `base_url`.

    Raises ExtractionError when the converter fails.
    """
    options = _CONVERSION if base_url is None else dataclasses.replace(_CONVERSION, base_url=base_url)
    try:
        return html_to_markdown.convert(content_html, options).content or ""
    except Exception as exc:  # the converter's errors (parse, size, panics) have no common base class
        raise ExtractionError(f"{type(exc).__name__}: {str(exc)[:300]}") from exc


def extract_text(text: str, url: str) -> Extracted:
    """A text or markdown file is stored as it is; its links are the markdown links and bare URLs in it."""
    text = clean_text(text.lstrip("\ufeff"))
    found = [match.group(1) for match in _MARKDOWN_LINK.finditer(text)]
    found += [match.group(0).rstrip(".,;:!?*_") for match in _BARE_URL.finditer(text)]
    links = tuple(dict.fromkeys(link for raw in found if (link := try_normalize_url(raw, url)) is not None))
    title = _text_title(text, url)
    return Extracted(title=title, markdown=text.strip(), links=links, kind=text_page_kind(text, title))


def clean_text(text: str) -> str:
    """`text` without control characters (tabs and line breaks stay) and invisible Unicode tag characters."""
    return _INVISIBLE.sub("", text)


def needs_rendering(html: str, markdown: str) -> bool:
    """True for pages whose content is built by JavaScript: (almost) no text, but scripts."""
    text = re.sub(r"\]\([^)]*\)", "]", markdown)
    return len(_WORD.findall(text)) < _MIN_WORDS_WITHOUT_RENDERING and "<script" in html.lower()


def _content_root(doc: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    root = _first(doc, "main")
    if root is None:
        root = _first(doc, "[role=main]")
    if root is not None:
        articles = root.cssselect("article")
        if len(articles) == 1:  # MkDocs Material, Docusaurus: <main> also holds sidebars and a TOC
            root = articles[0]
        chrome = _CHROME_IN_CONTENT
    else:
        articles = doc.cssselect("article")
        if len(articles) == 1:
            root, chrome = articles[0], _CHROME_IN_CONTENT
        else:
            bodies = doc.xpath("//body")
            if not bodies:
                return None
            root, chrome = bodies[0], _CHROME_IN_BODY
    for element in root.cssselect(chrome):
        element.drop_tree()
    return root


def _first(doc: lxml.html.HtmlElement, selector: str) -> lxml.html.HtmlElement | None:
    found = doc.cssselect(selector)
    return found[0] if found else None


def _base_url(doc: lxml.html.HtmlElement, url: str) -> str:
    for href in doc.xpath("//head/base/@href"):
        base = try_normalize_url(str(href), url)
        if base is not None:
            return base
    return url


def _robots(doc: lxml.html.HtmlElement) -> tuple[bool, bool]:
    """(noindex, nofollow) from `<meta name=robots>`; "none" means both."""
    directives: set[str] = set()
    for meta in doc.xpath("//meta[@name]"):
        if str(meta.get("name", "")).strip().lower() == "robots":
            directives |= {part.strip().lower() for part in str(meta.get("content", "")).split(",")}
    return bool(directives & {"noindex", "none"}), bool(directives & {"nofollow", "none"})


def _canonical(doc: lxml.html.HtmlElement, base: str) -> str | None:
    for link in doc.xpath("//link[@href]"):
        if "canonical" in str(link.get("rel", "")).lower().split():
            canonical = try_normalize_url(str(link.get("href")), base)
            # Another site's canonical (a mirror pointing at the original) is not ours to follow.
            return canonical if canonical is not None and same_site(canonical, base) else None
    return None


def _links(doc: lxml.html.HtmlElement, base: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for element in doc.iter("a", "area"):
        href = element.get("href")
        if href and not href.startswith("#"):
            link = try_normalize_url(href, base)
            if link is not None:
                seen[link] = None
    return tuple(seen)


def _title(doc: lxml.html.HtmlElement) -> str:
    for element in (*doc.xpath("//title"), *doc.xpath("//h1")):
        text = " ".join(element.text_content().split())
        if text:
            return text
    return ""


def _text_title(text: str, url: str) -> str:
    """The first markdown heading, else a short first line, else the file name."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        heading = line.lstrip("#").strip() if line.startswith("#") else ""
        if heading:
            return heading[:_MAX_TITLE_CHARS]
    if lines and len(lines[0]) <= _MAX_TITLE_CHARS:
        return lines[0]
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return name or url


def _tidy(markdown: str) -> str:
    lines = [line.rstrip() for line in markdown.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _bom_encoding(body: bytes) -> str | None:
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return name
    return None


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None
