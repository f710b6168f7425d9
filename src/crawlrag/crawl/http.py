"""The crawler's HTTP client: one GET with redirects checked hop by hop, a size cap and an overall deadline.

Connections go to addresses the `NetworkPolicy` vetted (`PinnedBackend`), so a DNS answer that changes between
the check and the connection cannot redirect a request to a private address. Bodies are decompressed here, not
by httpx: httpx inflates each network chunk without an output limit (a 64 KiB gzip chunk can become 64 MiB, and
brotli far more), while `_BoundedDecoder` never produces more than MAX_RESPONSE_BYTES.

crawl4ai's `AsyncHTTPCrawlerStrategy` (0.9.5) was the first choice, but it reads whole bodies without a limit,
raises on every non-2xx status (304 included) so status codes and headers of failures are lost, saves every
non-HTML response under ~/.crawl4ai/downloads, and follows redirects without letting us check each hop against
the private-network policy. Plain httpx does all of that in a few lines; crawl4ai still turns HTML into
markdown and drives the browser (see `extract.py` and `browser.py`).
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

import anyio
import httpcore
import httpx

from crawlrag.config import Settings
from crawlrag.crawl.guard import BlockedURLError, NetworkPolicy
from crawlrag.crawl.urls import CrawlInputError, normalize_url

log = logging.getLogger(__name__)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.9,application/xml;q=0.8,*/*;q=0.5"
# Only what `_BoundedDecoder` can inflate with an output limit; a server that sends anything else is refused.
_ACCEPT_ENCODING = "gzip, deflate"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
_MAX_CONNECTIONS = 100
# Answers that mean "not now": retried after the server's Retry-After (or this backoff), HTTP_RETRIES times.
_RETRY_STATUSES = frozenset({429, 503})
_RETRY_BACKOFF_SECONDS = 1.0


class FetchError(Exception):
    """A request that produced no usable response; `str(exc)` is a short reason for the crawl report."""


class HostUnreachableError(FetchError):
    """No connection could be made or the server never answered (refused, reset, timed out, TLS, DNS)."""


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

    def __init__(
        self,
        settings: Settings,
        policy: NetworkPolicy,
        *,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`network_backend` makes the connections to vetted addresses (default: anyio's TCP sockets)."""
        self._settings = settings
        self._policy = policy
        self._network_backend = network_backend
        self._client: httpx.AsyncClient | None = None

    @property
    def policy(self) -> NetworkPolicy:
        """The policy every request and connection of this client is checked by (the browser's proxy uses it)."""
        return self._policy

    async def __aenter__(self) -> HttpClient:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(self._settings.request_timeout_seconds),
            headers={"User-Agent": self._settings.user_agent, "Accept": _ACCEPT, "Accept-Encoding": _ACCEPT_ENCODING},
            transport=_pinned_transport(PinnedBackend(self._policy, self._network_backend)),
            # Proxies from the environment are not used: a proxy would resolve names itself, past the pin.
            trust_env=False,
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
        (default `MAX_RESPONSE_BYTES`). HTTP error statuses are returned, not raised; 429 and 503 are first
        retried (HTTP_RETRIES times) after the server's Retry-After, when that is at most MAX_RETRY_AFTER_SECONDS.
        """
        settings = self._settings
        for attempt in range(settings.http_retries + 1):
            response = await self._get_once(url, headers, want_body, max_bytes)
            if response.status not in _RETRY_STATUSES or attempt == settings.http_retries:
                return response
            delay = retry_delay(response.header("retry-after"), attempt)
            if delay > settings.max_retry_after_seconds:
                log.info(
                    "%s: HTTP %d asks to wait %.0fs, more than MAX_RETRY_AFTER_SECONDS", url, response.status, delay
                )
                return response
            log.info("%s: HTTP %d, retrying in %.1fs", url, response.status, delay)
            await anyio.sleep(delay)
        raise AssertionError("unreachable")

    async def _get_once(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        want_body: Callable[[HttpResponse], bool],
        max_bytes: int | None,
    ) -> HttpResponse:
        limit = self._settings.max_response_bytes if max_bytes is None else max_bytes
        timeout = self._settings.request_timeout_seconds
        try:
            with anyio.fail_after(timeout):
                return await self._get(url, dict(headers or {}), want_body, limit)
        except TimeoutError:
            raise HostUnreachableError(f"timed out after {timeout:g}s") from None
        except httpx.TimeoutException:
            raise HostUnreachableError(f"timed out after {timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise HostUnreachableError(_describe(exc)) from None
        except httpx.HTTPError as exc:
            raise FetchError(_describe(exc)) from None
        except BlockedURLError as exc:  # raised by PinnedBackend when the connection-time check refuses
            raise FetchError(str(exc)) from None

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
            try:
                request = self._client.build_request("GET", current, headers=headers)
            except httpx.InvalidURL as exc:
                raise FetchError(f"invalid URL ({exc})") from None
            try:
                response = await self._client.send(request, stream=True)
            except httpx.InvalidURL:
                # httpx builds the next request of every redirect, even when not following it, and raises
                # InvalidURL (not an HTTPError) for a malformed Location header.
                raise FetchError("redirected to a URL that cannot be crawled (malformed Location header)") from None
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
        content_type=_media_type(media_type),
        charset=charset,
        body=b"",
    )
    if not want_body(result):
        return result
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError(f"response too large ({int(declared)} bytes, limit is MAX_RESPONSE_BYTES={limit})")
    decoder = _BoundedDecoder(response.headers.get("content-encoding", ""), limit)
    chunks: list[bytes] = []
    received = 0
    async for raw in response.aiter_raw():
        received += len(raw)
        if received > limit:
            raise FetchError(f"response too large (over MAX_RESPONSE_BYTES={limit} bytes)")
        chunks.append(decoder.feed(raw))
    chunks.append(decoder.finish())
    return HttpResponse(
        url=url,
        status=result.status,
        headers=headers,
        content_type=result.content_type,
        charset=charset,
        body=b"".join(chunks),
    )


def _media_type(raw: str) -> str:
    """The media type in lower case; a value that is not one (it is server-controlled text) becomes "invalid"."""
    media_type = raw.strip().lower()
    if not media_type:
        return ""
    return media_type if _MEDIA_TYPE.match(media_type) else "invalid"


def _redirect_target(current: str, location: str) -> str:
    try:
        return normalize_url(location, base=current)
    except CrawlInputError as exc:
        # The reason names the rule; the Location value itself is server-controlled and stays out of it.
        reason = str(exc).split(": ", 1)[-1][:200]
        raise FetchError(f"redirected to a URL that cannot be crawled ({reason})") from None


class _BoundedDecoder:
    """Content-Encoding decoding that stops as soon as the output would pass `limit` bytes.

    A body may hold several gzip members (or zlib streams) one after the other, as `cat a.gz b.gz` makes and
    RFC 1952 allows: each is decoded in turn, the limit counting all of them. Zero padding between members is
    skipped as gzip(1) does; bytes after the last member that do not start another are ignored, as before.
    """

    def __init__(self, header: str, limit: int) -> None:
        codings = [part.strip().lower() for part in header.split(",") if part.strip()]
        codings = [coding for coding in codings if coding != "identity"]
        if len(codings) > 1:
            raise FetchError(f"unsupported content encoding {header[:40]!r} (more than one coding)")
        self._limit = limit
        self._produced = 0
        self._raw_deflate_tried = False
        self._between_members = b""  # the first byte of a next member's header, when a chunk ended after it
        self._trailer_reached = False
        self._coding = codings[0] if codings else ""
        self._wbits = zlib.MAX_WBITS
        if self._coding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif self._coding and self._coding != "deflate":
            raise FetchError(f"unsupported content encoding {self._coding[:40]!r} (crawlrag accepts gzip and deflate)")
        self._inflater: zlib._Decompress | None = zlib.decompressobj(self._wbits) if self._coding else None

    def feed(self, data: bytes) -> bytes:
        if self._inflater is None:
            return self._count(data)
        outputs: list[bytes] = []
        while data and not self._trailer_reached:
            if self._inflater.eof:  # the previous member ended: what follows is the next one, or a trailer
                data = (self._between_members + data).lstrip(b"\0")
                self._between_members = b""
                if len(data) < 2:
                    self._between_members = data
                    break
                if not _starts_member(data, self._wbits):
                    self._trailer_reached = True
                    break
                self._inflater = zlib.decompressobj(self._wbits)
            try:
                # max_length: never more than one byte past the limit, however well the input compresses.
                output = self._inflater.decompress(data, self._limit - self._produced + 1)
            except zlib.error as exc:
                if self._coding == "deflate" and not self._raw_deflate_tried and self._produced == 0:
                    # "deflate" is often sent without its zlib header (raw deflate); httpx accepts both too.
                    self._raw_deflate_tried = True
                    self._wbits = -zlib.MAX_WBITS
                    self._inflater = zlib.decompressobj(self._wbits)
                    continue
                raise FetchError(f"could not decode the {self._coding} response: {exc}") from None
            outputs.append(self._count(output))
            # Input left over is either the next member (after eof) or, past the limit, already refused above.
            data = self._inflater.unused_data if self._inflater.eof else b""
        return b"".join(outputs)

    def finish(self) -> bytes:
        if self._inflater is None:
            return b""
        return self._count(self._inflater.flush())

    def _count(self, output: bytes) -> bytes:
        self._produced += len(output)
        if self._produced > self._limit:
            raise FetchError(f"response too large (over MAX_RESPONSE_BYTES={self._limit} bytes once decompressed)")
        return output


def _starts_member(data: bytes, wbits: int) -> bool:
    """Whether `data` (two bytes at least) begins a gzip member (magic) or zlib stream (valid header, RFC 1950)."""
    if wbits > zlib.MAX_WBITS:
        return data.startswith(b"\x1f\x8b")
    return wbits > 0 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to the addresses the policy vetted for a host, never to a fresh DNS answer."""

    def __init__(self, policy: NetworkPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # httpcore still sends the Host header and TLS server name of the URL; only the address is fixed here.
        addresses = await self._policy.addresses(host)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # `addresses` is never empty
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the crawler does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pinned_transport(backend: PinnedBackend) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its connection pool rebuilt around `backend`.

    httpx has no public way to pass a network backend; its transport keeps the httpcore pool in `_pool` (since
    0.18). The assertion makes a future rename fail loudly instead of silently connecting unpinned.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    assert isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool)
    transport._pool = httpcore.AsyncConnectionPool(
        # trust_env here only means SSL_CERT_FILE / SSL_CERT_DIR (custom certificate authorities), not proxies.
        ssl_context=httpx.create_ssl_context(trust_env=True),
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=backend,
    )
    return transport


def retry_delay(retry_after: str | None, attempt: int) -> float:
    """Seconds to wait before retrying: Retry-After (seconds or an HTTP date), else exponential backoff."""
    backoff = _RETRY_BACKOFF_SECONDS * 2**attempt
    if retry_after is None or not retry_after.strip():
        return backoff
    value = retry_after.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return backoff
    return max(0.0, when.timestamp() - time.time())


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _connect_reason(exc: httpx.HTTPError) -> str:
    """What went wrong, in the words a user searches for: refused, reset, timed out, TLS, DNS."""
    chain = _causes(exc)
    text = " ".join(str(item) for item in chain).lower()
    if any(isinstance(item, ssl.SSLError) for item in chain) or "certificate" in text or "ssl" in text:
        return "TLS error"
    if any(isinstance(item, ConnectionRefusedError) for item in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(item, ConnectionResetError) for item in chain) or "reset by peer" in text:
        return "connection reset"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "DNS lookup failed"
    if any(isinstance(item, TimeoutError) for item in chain) or "timed out" in text:
        return "connection timed out"
    return "connection failed"


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"{_connect_reason(exc)}: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and "reset" in detail.lower():
        return f"connection reset: {detail}"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the response: {detail}"
    return f"request failed: {detail}"
