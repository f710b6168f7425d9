"""The only way out for the headless browser: an HTTP proxy on loopback that vets every request and tunnel.

Chromium is started with `--proxy-server` pointing here and no bypass (loopback included), so whatever it opens
(a navigation, a redirect, a subresource, a form post, a WebSocket, a speculative preconnect) is a connection to
this proxy, never to the destination. Request interception in the page (see `browser.py`) answers most requests
before they reach the network; this proxy is what holds when something escapes it, which is why it is
built to refuse by default:

* `CONNECT host:port` (HTTPS and WebSocket tunnels) is checked by the crawler's `NetworkPolicy` and the tunnel
  goes to an address the policy vetted for that host (the same pinning as `http.PinnedBackend`), never to a
  fresh DNS answer;
* a plain request (`GET http://host/path`) is made by the crawler's `HttpClient`, with its checks, pinning,
  hop-by-hop redirect checks and size limit; methods other than GET and HEAD, and upgrades, are refused:
  rendering reads pages;
* anything else (no absolute URL, a malformed head, an oversized head) is refused. Every refusal answers with
  a status and the rule, and opens no connection.

One request per client connection (`Connection: close`): Chromium reconnects to loopback cheaply, and the proxy
never has to parse a second request out of a stream it no longer controls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.stapled import MultiListener

from crawlrag.crawl.guard import BlockedURLError, NetworkPolicy
from crawlrag.crawl.http import FetchError, HttpClient

log = logging.getLogger(__name__)

# Request headers of the browser worth keeping when its request is made by the crawler's client instead.
FORWARDED_REQUEST_HEADERS = ("accept", "accept-language", "cookie")
# Response headers that describe the bytes on the wire (the client has decoded them) or this one hop.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "content-encoding",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
_MAX_HEAD_BYTES = 32 * 1024
_READ_METHODS = frozenset({"GET", "HEAD"})
_RELAY_CHUNK = 64 * 1024


class ProxyRefusal(Exception):
    """A request the proxy answers with `status` and the reason, connecting nowhere."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class EgressProxy:
    """Bind with `await proxy.listen()` (the address to give Chromium), then run `await proxy.serve()` in a task
    until it is cancelled; `aclose()` releases the socket. `async with EgressProxy(...)` listens and closes.

    `policy` must be the policy `http` was built with, so both paths of the browser apply the same rules.
    """

    def __init__(self, policy: NetworkPolicy, http: HttpClient, *, timeout: float) -> None:
        self._policy = policy
        self._http = http
        self._timeout = timeout
        self._listener: MultiListener[SocketStream] | None = None

    @property
    def address(self) -> str:
        """`127.0.0.1:port` of the listening socket."""
        if self._listener is None:
            raise RuntimeError("EgressProxy.listen() was not called")
        port = self._listener.extra(SocketAttribute.local_port)
        return f"127.0.0.1:{port}"

    async def listen(self) -> str:
        if self._listener is None:
            self._listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        return self.address

    async def serve(self) -> None:
        """Answer connections until cancelled (every connection in flight is cancelled with it)."""
        if self._listener is None:
            await self.listen()
        assert self._listener is not None
        try:
            await self._listener.serve(self._handle)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with anyio.CancelScope(shield=True):  # also when serve() ends by cancellation: the socket must close
                await listener.aclose()

    async def __aenter__(self) -> EgressProxy:
        await self.listen()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _handle(self, client: SocketStream) -> None:
        # An exception here would end the listener's task group, and with it the proxy: each connection's
        # failure stays its own.
        async with client:
            try:
                await self._answer(client)
            except ProxyRefusal as refusal:
                log.debug("browser egress refused (%s): %s", int(refusal.status), refusal)
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await client.send(_status_response(refusal.status, str(refusal)))
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError):
                pass  # the browser closed or stalled its side; there is nobody to answer
            except Exception:
                log.exception("the browser egress proxy failed on a connection")

    async def _answer(self, client: SocketStream) -> None:
        reader = BufferedByteReceiveStream(client)
        with anyio.fail_after(self._timeout):
            try:
                head = await reader.receive_until(b"\r\n\r\n", _MAX_HEAD_BYTES)
            except anyio.DelimiterNotFound:
                head = b"\0" * (_MAX_HEAD_BYTES + 1)
            except anyio.IncompleteRead:
                return
        # receive_until() returns a longer head when it arrived in one piece; the bound is the same either way.
        if len(head) > _MAX_HEAD_BYTES:
            raise ProxyRefusal(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
        method, target, headers = _parse_head(head)
        if method == "CONNECT":
            await self._tunnel(target, reader, client)
        else:
            await self._forward(method, target, headers, client)

    async def _tunnel(self, authority: str, reader: BufferedByteReceiveStream, client: SocketStream) -> None:
        host, port = _authority(authority)
        url = f"https://{authority}/"
        with anyio.fail_after(self._timeout):
            try:
                await self._policy.check(url)
                addresses = await self._policy.addresses(host, url=url)
            except BlockedURLError as exc:
                raise ProxyRefusal(HTTPStatus.FORBIDDEN, str(exc)) from None
            upstream = await _connect(addresses, port)
        async with upstream:
            await client.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            async with anyio.create_task_group() as relays:
                relays.start_soon(_relay, reader, upstream)
                relays.start_soon(_relay, upstream, client)

    async def _forward(self, method: str, target: str, headers: Mapping[str, str], client: SocketStream) -> None:
        scheme = urlsplit(target).scheme.lower() if "://" in target else ""
        if scheme not in ("http", "https"):
            raise ProxyRefusal(HTTPStatus.BAD_REQUEST, "the proxy only takes absolute http:// URLs and CONNECT")
        if method not in _READ_METHODS:
            raise ProxyRefusal(HTTPStatus.METHOD_NOT_ALLOWED, f"{method[:20]} requests are refused: rendering reads")
        if "upgrade" in headers:
            raise ProxyRefusal(HTTPStatus.FORBIDDEN, "protocol upgrades are refused while rendering")
        forwarded = {name: headers[name] for name in FORWARDED_REQUEST_HEADERS if name in headers}
        try:
            response = await self._http.get(target, headers=forwarded, want_body=lambda _: method == "GET")
        except FetchError as exc:
            raise ProxyRefusal(HTTPStatus.BAD_GATEWAY, str(exc)) from None
        kept = {name: value for name, value in response.headers.items() if name not in DROPPED_RESPONSE_HEADERS}
        await client.send(_response_head(response.status, kept, len(response.body)) + response.body)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, target and lower-cased headers of a request head (the part before the blank line)."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise ProxyRefusal(HTTPStatus.BAD_REQUEST, "malformed request line") from None
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise ProxyRefusal(HTTPStatus.BAD_REQUEST, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProxyRefusal(HTTPStatus.BAD_REQUEST, "malformed header line")
        headers[name.lower()] = value.strip()
    return method.upper(), target, headers


def _authority(authority: str) -> tuple[str, int]:
    """Host and port of a CONNECT target (`host:port`, `[v6]:port`)."""
    try:
        parts = urlsplit(f"//{authority}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    # A netloc that differs from the target means a path, query or credentials were smuggled into it.
    if not host or port is None or parts.netloc != authority or "@" in authority:
        raise ProxyRefusal(HTTPStatus.BAD_REQUEST, "CONNECT needs a host:port target")
    return host, port


async def _connect(addresses: tuple[str, ...], port: int) -> SocketStream:
    failure: OSError | None = None
    for address in addresses:
        try:
            return await anyio.connect_tcp(address, port)
        except OSError as exc:
            failure = exc
    raise ProxyRefusal(HTTPStatus.BAD_GATEWAY, f"connection failed: {failure}")


async def _relay(source: ByteReceiveStream, sink: ByteSendStream) -> None:
    """Copy until `source` ends, then pass the end on (a half-close), so the other direction can finish."""
    with suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        while True:
            await sink.send(await source.receive(_RELAY_CHUNK))
    with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        if isinstance(sink, SocketStream):
            await sink.send_eof()


def _response_head(status: int, headers: Mapping[str, str], length: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    # Values come from httpx, which refuses CR and LF in them; removing them again keeps this framing intact.
    lines += [f"{name}: {value}".replace("\r", " ").replace("\n", " ") for name, value in headers.items()]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1", "replace")


def _status_response(status: HTTPStatus, reason: str) -> bytes:
    body = f"crawlrag refused this request: {reason}\n".encode()
    return _response_head(status, {"content-type": "text/plain; charset=utf-8"}, len(body)) + body
