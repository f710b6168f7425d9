"""URL handling for the crawler: normalisation, classification, site membership and include/exclude filters.

Every URL the crawler compares, stores or fetches goes through `normalize_url` first, so two spellings of the
same address (`HTTP://Example.com:80/a/../b#x` and `http://example.com/b`) are one URL for de-duplication.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from crawlrag.crawl.addresses import AddressSyntaxError, host_ip

UrlKind = Literal["sitemap", "text", "page"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# Characters RFC 3986 allows unescaped in a path and in a query (besides unreserved ones and "%").
_PATH_SAFE = "/:@!$&'()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})?")
_HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
_TEXT_SUFFIXES = (".txt", ".md", ".markdown")
# The sitemaps protocol's limit, and what the MCP tools accept. Longer links are almost always session junk or
# an attempt to bloat the index; they are ignored when found in pages and refused when given.
MAX_URL_CHARS = 2048


class CrawlInputError(ValueError):
    """A URL or crawl request crawlrag will not crawl; the message says what is wrong and what is accepted."""


def normalize_url(url: str, base: str | None = None) -> str:
    """Return the canonical form of `url` (resolved against `base` when given).

    Lower-cases scheme and host, drops default ports, fragments and dot segments, normalises percent escapes
    and turns an empty path into "/". A host written as an IPv4 number in any form browsers and the C resolver
    accept (`2130706433`, `0x7f.1`, `0177.0.0.1`) becomes its dotted-decimal address. The query is kept. Raises
    `CrawlInputError` for anything but http(s), for credentials in the URL and for URLs over MAX_URL_CHARS.
    """
    raw = url.strip()
    if len(raw) > 4 * MAX_URL_CHARS:  # refuse before any work; escaping can only make it longer
        raise CrawlInputError(f"Cannot crawl a URL of {len(raw)} characters: the limit is {MAX_URL_CHARS}")
    if base is not None:
        raw = urljoin(base, raw)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise CrawlInputError(f"Invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise CrawlInputError(f"Cannot crawl {url!r} ({shown}): only http:// and https:// URLs are supported")
    if parts.username is not None or parts.password is not None:
        raise CrawlInputError(
            f"Cannot crawl {_redact(url)!r}: URLs with credentials (user:password@) are not supported"
        )
    host = _normalize_host(parts.hostname or "", url)
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalize_escapes(parts.path, _PATH_SAFE)) or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = _normalize_escapes(parts.query, _QUERY_SAFE)
    normalized = urlunsplit((scheme, netloc, path, query, ""))
    if len(normalized) > MAX_URL_CHARS:
        raise CrawlInputError(
            f"Cannot crawl {normalized[:80]!r}...: the URL is {len(normalized)} characters long, "
            f"the limit is {MAX_URL_CHARS}"
        )
    return normalized


def try_normalize_url(url: str, base: str | None = None) -> str | None:
    """`normalize_url`, or None for links the crawler ignores (mailto:, javascript:, malformed)."""
    try:
        return normalize_url(url, base)
    except CrawlInputError:
        return None


def source_id_for(url: str) -> str:
    """The source a URL belongs to: its host, plus the port when it is not the default one."""
    return urlsplit(normalize_url(url)).netloc


def url_kind(url: str) -> UrlKind:
    """Guess from the path what a URL points at; the crawler still checks what the server actually sends."""
    path = urlsplit(url).path.lower()
    if path.endswith((".xml", ".xml.gz")) or "sitemap" in path.rsplit("/", 1)[-1]:
        return "sitemap"
    if path.endswith(_TEXT_SUFFIXES):
        return "text"
    return "page"


def is_llms_txt(url: str) -> bool:
    """True for an llms.txt index (its links are followed), not for llms-full.txt (stored as it is)."""
    return urlsplit(url).path.lower().rsplit("/", 1)[-1] == "llms.txt"


def site_key(url: str) -> str:
    """Host and port with a leading "www." removed: http and https, www and bare host are one site."""
    netloc = urlsplit(url).netloc.lower()
    return netloc.removeprefix("www.")


def page_key(url: str) -> str:
    """What makes two URLs one page: not the scheme, a "www.", a trailing slash or a directory's index.html.

    `http://example.com/docs/`, `https://www.example.com/docs/index.html` and `https://example.com/docs` are
    one page: the crawler stores the first of them it reaches (in site order, so the same one on every crawl).
    """
    parts = urlsplit(url)
    path = parts.path
    for index in ("/index.html", "/index.htm"):
        if path.endswith(index):
            path = path[: -len(index) + 1]
    return urlunsplit(("", site_key(url), path.rstrip("/") or "/", parts.query, ""))


def same_site(a: str, b: str) -> bool:
    return site_key(a) == site_key(b)


def matches_any(url: str, patterns: Iterable[str]) -> bool:
    """Case-sensitive glob match on the full URL or on its path, so "*/api/*" and "/api/*" both work."""
    path = urlsplit(url).path
    return any(fnmatchcase(url, pattern) or fnmatchcase(path, pattern) for pattern in patterns)


def passes_filters(url: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """True when `url` matches one of `include` (or `include` is empty) and none of `exclude`."""
    include = tuple(include)
    if include and not matches_any(url, include):
        return False
    return not matches_any(url, exclude)


def _normalize_host(host: str, original: str) -> str:
    if not host:
        raise CrawlInputError(f"Cannot crawl {original!r}: the URL has no host")
    if ":" in host:  # IPv6 literal; urlsplit already removed the brackets
        try:
            return f"[{host_ip(host)}]"
        except AddressSyntaxError as exc:
            raise CrawlInputError(f"Cannot crawl {original!r}: {exc}") from None
    host = host.rstrip(".") or host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise CrawlInputError(f"Cannot crawl {original!r}: invalid international host name") from None
    if not _HOST_CHARS.match(host):
        raise CrawlInputError(f"Cannot crawl {original!r}: invalid host name {host!r}")
    try:
        address = host_ip(host)
    except AddressSyntaxError as exc:
        raise CrawlInputError(f"Cannot crawl {original!r}: {exc}") from None
    return host if address is None else str(address)


def _normalize_escapes(text: str, safe: str) -> str:
    """Upper-case percent escapes, decode those of unreserved characters, escape what may not appear raw."""

    def fix(match: re.Match[str]) -> str:
        hex_digits = match.group(1)
        if hex_digits is None:  # a lone "%" is data, not an escape
            return "%25"
        char = chr(int(hex_digits, 16))
        return char if char in _UNRESERVED else "%" + hex_digits.upper()

    return quote(_ESCAPE.sub(fix, text), safe=safe + "%", errors="replace")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, on whole segments."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)
