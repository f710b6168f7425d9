"""The crawler's HTTP client: one GET with redirects checked hop by hop, a size cap and an overall deadline.

crawl4ai's `AsyncHTTPCrawlerStrategy` (0.9.5) was the first choice, but it reads whole bodies without a limit,
raises on every non-2xx status (304 included) so status codes and headers of failures are lost, saves every
non-HTML response under ~/.crawl4ai/downloads, and follows redirects without letting us check each hop against
the private-network policy. Plain httpx does all of that in a few lines; crawl4ai still turns HTML into
markdown and drives the browser (see `extract.py` and `browser.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

import httpx

from crawlrag.config import Settings
from crawlrag.crawl.guard import BlockedURLError, NetworkPolicy
from crawlrag.crawl.urls import CrawlInputError, normalize_url

log = logging.getLogger(__name__)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.9,application/xml;q=0.8,*/*;q=0.5"


class FetchError(Exception):
    """A request that produced no usable response; `str(exc)` is a short reason for the crawl report."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    url: str  # normalised URL after redirects
    status: int
    headers: Mapping[str, str]
    content_type: str  # lower-case media type without parameters, "" when the server sent none
    charset: str | None
    body: bytes  # empty when the body was not wanted

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class HttpClient:
    """Use as `async with HttpClient(settings, policy) as http:`; one client serves a whole crawl."""

    def __init__(self, settings: Settings, policy: NetworkPolicy) -> None:
        self._settings = settings
        self._policy = policy
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HttpClient:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(self._settings.request_timeout_seconds),
            headers={"User-Agent": self._settings.user_agent, "Accept": _ACCEPT},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        want_body: Callable[[HttpResponse], bool] = lambda response: True,
        max_bytes: int | None = None,
    ) -> HttpResponse:
        """GET `url`, following redirects. `want_body` sees the headers first and can decline the download.

        Raises `FetchError` for network errors, timeouts, blocked redirects and bodies over `max_bytes`
        (default `MAX_RESPONSE_BYTES`). HTTP error statuses are returned, not raised.
        """
        limit = self._settings.max_response_bytes if max_bytes is None else max_bytes
        timeout = self._settings.request_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return await self._get(url, dict(headers or {}), want_body, limit)
        except TimeoutError:
            raise FetchError(f"timed out after {timeout:g}s") from None
        except httpx.TimeoutException:
            raise FetchError(f"timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise FetchError(_describe(exc)) from None

    async def _get(
        self, url: str, headers: dict[str, str], want_body: Callable[[HttpResponse], bool], limit: int
    ) -> HttpResponse:
        if self._client is None:
            raise RuntimeError("HttpClient used outside 'async with'")
        current = url
        for _hop in range(self._settings.max_redirects + 1):
            try:
                await self._policy.check(current)
            except BlockedURLError as exc:
                raise FetchError(str(exc)) from None
            request = self._client.build_request("GET", current, headers=headers)
            response = await self._client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECT_STATUSES and location:
                    current = _redirect_target(current, location)
                    continue
                return await _read(current, response, want_body, limit)
            finally:
                await response.aclose()
        raise FetchError(f"too many redirects (more than {self._settings.max_redirects})")


async def _read(
    url: str, response: httpx.Response, want_body: Callable[[HttpResponse], bool], limit: int
) -> HttpResponse:
    raw_type = response.headers.get("content-type", "")
    media_type, _, params = raw_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip().strip("\"'")
    headers = {key.lower(): value for key, value in response.headers.items()}
    result = HttpResponse(
        url=url,
        status=response.status_code,
        headers=headers,
        content_type=media_type.strip().lower(),
        charset=charset,
        body=b"",
    )
    if not want_body(result):
        return result
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError(f"response too large ({int(declared)} bytes, limit is MAX_RESPONSE_BYTES={limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError(f"response too large (over MAX_RESPONSE_BYTES={limit} bytes)")
        chunks.append(chunk)
    return HttpResponse(
        url=url,
        status=result.status,
        headers=headers,
        content_type=result.content_type,
        charset=charset,
        body=b"".join(chunks),
    )


def _redirect_target(current: str, location: str) -> str:
    try:
        return normalize_url(location, base=current)
    except CrawlInputError:
        raise FetchError(f"redirected to an unsupported URL: {location[:200]}") from None


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {detail}"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the response: {detail}"
    return f"request failed: {detail}"
