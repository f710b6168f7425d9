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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    lastmod: dict[str, datetime] = field(default_factory=dict)  # by location, where the entry gives a valid one


@dataclass(slots=True)
class SitemapListing:
    """The page URLs of a sitemap and its nested sitemaps, their `<lastmod>`s, and the child sitemaps that could
    not be read (so the listing may miss pages)."""

    urls: list[str]
    lastmod: dict[str, datetime] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (sitemap URL, reason)


def parse_lastmod(text: str) -> datetime | None:
    """A W3C datetime as an aware UTC datetime; a date alone means the end of that day (the page may have changed
    at any time on it), a missing time zone means UTC. None when it cannot be read."""
    value = text.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if len(value) <= 10:  # YYYY-MM-DD
        parsed += timedelta(days=1) - timedelta(microseconds=1)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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
    lastmod: dict[str, datetime] = {}
    for child in root:
        if _local_name(child.tag) != entry:
            continue
        url, modified = None, None
        for item in child:
            name = _local_name(item.tag)
            if name == "loc" and item.text:
                url = try_normalize_url(item.text.strip(), base_url)
            elif name == "lastmod" and item.text:
                modified = parse_lastmod(item.text)
        if url is not None:
            locations[url] = None
            if modified is not None:
                lastmod[url] = modified
    return ParsedSitemap(
        kind="urlset" if kind == "urlset" else "sitemapindex", locations=tuple(locations), lastmod=lastmod
    )


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
    listing = await collect_sitemap(
        http, sitemap_url, max_urls=max_urls, max_bytes=max_bytes, max_depth=max_depth, max_documents=max_documents
    )
    return listing.urls


async def collect_sitemap(
    http: HttpClient,
    sitemap_url: str,
    *,
    max_urls: int,
    max_bytes: int,
    max_depth: int = MAX_NESTING,
    max_documents: int = MAX_DOCUMENTS,
) -> SitemapListing:
    """`collect_sitemap_urls` with the `<lastmod>` of each URL and the child sitemaps that could not be read."""
    listing = SitemapListing([])
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
            listing.problems.append((current, str(exc)))
            continue
        if parsed.kind == "urlset":
            for url in parsed.locations[: max_urls - len(urls)]:
                urls[url] = None
                if url in parsed.lastmod:
                    listing.lastmod[url] = parsed.lastmod[url]
        elif depth + 1 > max_depth:
            log.warning("ignoring sitemap index %s: nested deeper than %d levels", current, max_depth)
        else:
            # Queue no more than could ever be fetched: an index may list millions of "sitemaps".
            room = max(0, max_documents - len(visited) - len(queue))
            queue.extend((child, depth + 1) for child in parsed.locations[:room])
    listing.urls = list(urls)[:max_urls]
    return listing


async def _fetch(http: HttpClient, url: str, max_bytes: int) -> ParsedSitemap:
    response = await http.get(url, max_bytes=max_bytes)
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    if response.content_type in ("text/html", "application/xhtml+xml"):
        raise NotASitemapError("the response is an HTML page")
    return parse_sitemap(response.body, response.url, max_bytes=max_bytes)


def _local_name(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()
