"""Fetch one URL and turn it into a document, a failure or a deliberate skip.

A plain HTTP GET comes first (status, content type, validators, size cap). HTML is converted to markdown; when
that leaves (almost) no text and the page has scripts, it is rendered in the browser and converted again
(BROWSER=auto), every HTML page is rendered (BROWSER=always), or never (BROWSER=never). crawl4ai's
`fallback_fetch_function` hook is not used for this: it only fires for anti-bot blocks and exceptions, never
for a page that loaded fine but is empty without JavaScript.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import anyio

from crawlrag.config import Settings
from crawlrag.crawl.browser import BrowserRenderer, BrowserUnavailableError
from crawlrag.crawl.extract import (
    Extracted,
    ExtractionError,
    decode_html,
    extract_html,
    extract_text,
    needs_rendering,
)
from crawlrag.crawl.http import FetchError, HttpClient, HttpResponse
from crawlrag.crawl.results import PageFailure, PageSkipped
from crawlrag.crawl.urls import url_kind
from crawlrag.models import PageKind

log = logging.getLogger(__name__)

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_UNLABELLED_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

DocumentKind = Literal["html", "text"]


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A successfully fetched page (HTML converted to markdown, or a text file as it is)."""

    url: str  # normalised URL after redirects
    status_code: int
    content_type: str
    title: str
    markdown: str
    etag: str | None
    last_modified: str | None
    rendered: bool  # the markdown came from the browser
    kind: PageKind = "content"
    canonical: str | None = None  # same-site `<link rel=canonical>`: the URL to store the page under
    noindex: bool = False  # robots meta tag or X-Robots-Tag: follow the links, store nothing
    convert_seconds: float = 0.0  # CPU time spent turning HTML into markdown


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    requested_url: str
    final_url: str
    result: FetchedDocument | PageFailure | PageSkipped
    links: tuple[str, ...] = field(default=())  # also set for empty pages: their navigation still leads on


class Fetcher:
    def __init__(self, settings: Settings, http: HttpClient, renderer: BrowserRenderer) -> None:
        self._settings = settings
        self._http = http
        self._renderer = renderer

    async def fetch(self, url: str, *, validators: tuple[str | None, str | None] | None = None) -> FetchOutcome:
        """Fetch `url`; with `validators` (etag, last_modified) the request is conditional."""
        headers: dict[str, str] = {}
        if validators is not None:
            etag, last_modified = validators
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
        try:
            response = await self._http.get(url, headers=headers, want_body=_body_wanted)
        except FetchError as exc:
            return FetchOutcome(url, url, PageFailure(url, str(exc)))
        final = response.url
        if response.status == 304:
            return FetchOutcome(url, final, PageSkipped(final, "not modified"))
        if not 200 <= response.status < 300:
            return FetchOutcome(url, final, PageFailure(url, f"HTTP {response.status}", response.status))
        kind = _document_kind(response)
        if kind is None:
            shown = response.content_type or "unknown"
            return FetchOutcome(url, final, PageSkipped(url, f"unsupported content type: {shown}"))
        # Bodies are up to MAX_RESPONSE_BYTES: decoding and text extraction run off the event loop.
        text = await anyio.to_thread.run_sync(decode_html, response.body, response.charset)
        if kind == "text":
            extracted = await anyio.to_thread.run_sync(extract_text, text, final, abandon_on_cancel=True)
            rendered, note, convert_seconds = False, "", 0.0
        else:
            try:
                extracted, rendered, note, convert_seconds = await self._convert_html(text, final)
            except ExtractionError as exc:
                return FetchOutcome(url, final, PageFailure(url, f"markdown conversion failed: {exc}"))
        if not extracted.markdown.strip():
            return FetchOutcome(url, final, PageFailure(url, f"empty page{note}"), extracted.links)
        document = FetchedDocument(
            url=final,
            status_code=response.status,
            content_type=response.content_type or ("text/html" if kind == "html" else "text/plain"),
            title=extracted.title,
            markdown=extracted.markdown,
            etag=response.header("etag"),
            last_modified=response.header("last-modified"),
            rendered=rendered,
            kind=extracted.kind,
            canonical=extracted.canonical,
            noindex=extracted.noindex or "noindex" in (response.header("x-robots-tag") or "").lower(),
            convert_seconds=convert_seconds,
        )
        return FetchOutcome(url, final, document, extracted.links)

    async def _convert_html(self, html: str, url: str) -> tuple[Extracted, bool, str, float]:
        """The page's extraction, whether the browser rendered it, a note on why not, and the conversion's CPU
        seconds."""
        extracted, seconds = await anyio.to_thread.run_sync(_extract_timed, html, url, abandon_on_cancel=True)
        mode = self._settings.browser
        if mode == "never" or (mode == "auto" and not needs_rendering(html, extracted.markdown)):
            return extracted, False, "", seconds
        try:
            page = await self._renderer.render(url)
        except BrowserUnavailableError as exc:
            return extracted, False, f" (browser unavailable: {exc})", seconds
        except Exception as exc:  # navigation errors, timeouts, a crashed renderer
            log.info("rendering %s in the browser failed: %s", url, exc)
            return extracted, False, f" (browser rendering failed: {exc})", seconds
        rendered, more = await anyio.to_thread.run_sync(_extract_timed, page.html, url, abandon_on_cancel=True)
        seconds += more
        if not rendered.markdown.strip() and extracted.markdown.strip():
            return extracted, False, "", seconds
        links = tuple(dict.fromkeys((*rendered.links, *extracted.links)))
        return (
            Extracted(
                title=rendered.title or extracted.title,
                markdown=rendered.markdown,
                links=links,
                kind=rendered.kind,
                canonical=rendered.canonical or extracted.canonical,
                noindex=rendered.noindex or extracted.noindex,
            ),
            True,
            "",
            seconds,
        )


def _extract_timed(html: str, url: str) -> tuple[Extracted, float]:
    """`extract_html` and the CPU time it took in this thread: the conversion's own cost, however busy the
    machine (wall time would count the waits of concurrent fetches and of the embedder)."""
    started = time.thread_time()
    extracted = extract_html(html, url)
    return extracted, time.thread_time() - started


def _classify(content_type: str, url: str) -> DocumentKind | Literal["sniff"] | None:
    if content_type in _HTML_TYPES:
        return "html"
    if content_type in _TEXT_TYPES:
        return "text"
    if content_type in _UNLABELLED_TYPES:
        return "text" if url_kind(url) == "text" else "sniff"
    return None


def _body_wanted(response: HttpResponse) -> bool:
    """Download the body only for successful responses crawlrag can store (or has to sniff)."""
    return 200 <= response.status < 300 and _classify(response.content_type, response.url) is not None


def _document_kind(response: HttpResponse) -> DocumentKind | None:
    kind = _classify(response.content_type, response.url)
    if kind != "sniff":
        return kind
    head = response.body[:1024].lstrip().lower()
    return "html" if head.startswith((b"<!doctype html", b"<html")) else None
