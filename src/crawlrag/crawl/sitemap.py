"""Sitemaps and sitemap indexes (sitemaps.org protocol), plain or gzipped.

Parsing uses defusedxml with DTDs forbidden, so entity expansion ("billion laughs") and external entities are
rejected. Every limit is explicit: the number of URLs collected (MAX_SITEMAP_URLS), how deep indexes may nest
(MAX_SITEMAP_DEPTH), how many sitemap documents one crawl downloads or queues (MAX_DOCUMENTS), and the size of
each document, also once a .xml.gz is decompressed (MAX_RESPONSE_BYTES).
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from crawlrag.crawl.http import FetchError, HttpClient
from crawlrag.crawl.urls import try_normalize_url

log = logging.getLogger(__name__)

MAX_NESTING = 3  # default of MAX_SITEMAP_DEPTH: the protocol allows one level, real sites sometimes use two
MAX_DOCUMENTS = 500
_GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(Exception):
    """The document is not a sitemap crawlrag can read; the message says why."""


class NotASitemapError(SitemapError):
    """The URL answered with HTML (or other non-XML), so it is a web page after all."""


@dataclass(frozen=True, slots=True)
class ParsedSitemap:
    kind: Literal["urlset", "sitemapindex"]
    locations: tuple[str, ...]  # page URLs for a urlset, sitemap URLs for an index


def decompress(data: bytes, max_bytes: int) -> bytes:
    """Gunzip `data` if it is gzip, refusing to produce more than `max_bytes` (zip-bomb guard)."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        output = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapError(f"corrupt gzip data: {exc}") from None
    if len(output) > max_bytes:
        raise SitemapError(f"decompressed sitemap is larger than {max_bytes} bytes (MAX_RESPONSE_BYTES)")
    return output


def parse_sitemap(data: bytes, base_url: str, *, max_bytes: int) -> ParsedSitemap:
    """Parse a (possibly gzipped) sitemap or sitemap index; `<loc>`s are normalised against `base_url`."""
    xml = decompress(data, max_bytes).lstrip()
    if not xml.startswith(b"<"):
        raise NotASitemapError("the response is not XML")
    if xml[:100].lower().startswith((b"<!doctype html", b"<html")):
        raise NotASitemapError("the response is an HTML page")
    try:
        root: Element = defusedxml.ElementTree.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise SitemapError(f"refusing unsafe XML ({type(exc).__name__})") from None
    except Exception as exc:  # xml.etree.ElementTree.ParseError and friends
        raise SitemapError(f"invalid XML: {exc}") from None
    kind = _local_name(root.tag)
    if kind == "html":
        raise NotASitemapError("the response is an HTML page")
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"unexpected root element <{kind}>, expected <urlset> or <sitemapindex>")
    entry = "url" if kind == "urlset" else "sitemap"
    locations: dict[str, None] = {}
    for child in root:
        if _local_name(child.tag) != entry:
            continue
        for field in child:
            if _local_name(field.tag) == "loc" and field.text:
                url = try_normalize_url(field.text.strip(), base_url)
                if url is not None:
                    locations[url] = None
    return ParsedSitemap(kind="urlset" if kind == "urlset" else "sitemapindex", locations=tuple(locations))


async def collect_sitemap_urls(
    http: HttpClient,
    sitemap_url: str,
    *,
    max_urls: int,
    max_bytes: int,
    max_depth: int = MAX_NESTING,
    max_documents: int = MAX_DOCUMENTS,
) -> list[str]:
    """Page URLs reachable from `sitemap_url` through nested indexes, in document order, at most `max_urls`.

    Raises `FetchError`/`SitemapError` when the top-level document cannot be used (`NotASitemapError` when it
    is a web page); broken child sitemaps are logged and skipped.
    """
    urls: dict[str, None] = {}
    visited: set[str] = set()
    queue: deque[tuple[str, int]] = deque([(sitemap_url, 0)])
    while queue and len(urls) < max_urls:
        current, depth = queue.popleft()
        if current in visited:
            continue
        if len(visited) >= max_documents:
            log.warning("stopping at %d sitemap documents for %s", max_documents, sitemap_url)
            break
        visited.add(current)
        try:
            parsed = await _fetch(http, current, max_bytes)
        except (FetchError, SitemapError) as exc:
            if current == sitemap_url:
                raise
            log.warning("skipping sitemap %s: %s", current, exc)
            continue
        if parsed.kind == "urlset":
            for url in parsed.locations[: max_urls - len(urls)]:
                urls[url] = None
        elif depth + 1 > max_depth:
            log.warning("ignoring sitemap index %s: nested deeper than %d levels", current, max_depth)
        else:
            # Queue no more than could ever be fetched: an index may list millions of "sitemaps".
            room = max(0, max_documents - len(visited) - len(queue))
            queue.extend((child, depth + 1) for child in parsed.locations[:room])
    return list(urls)[:max_urls]


async def _fetch(http: HttpClient, url: str, max_bytes: int) -> ParsedSitemap:
    response = await http.get(url, max_bytes=max_bytes)
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    if response.content_type in ("text/html", "application/xhtml+xml"):
        raise NotASitemapError("the response is an HTML page")
    return parse_sitemap(response.body, response.url, max_bytes=max_bytes)


def _local_name(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()
