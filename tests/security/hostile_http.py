"""A programmable HTTP server on 127.0.0.1 for hostile-input tests: redirects, endless streams, slow drips, bombs.

    with HostileServer() as server:
        server.route("/big", stream(total=2**30))        # a 1 GB body, generated chunk by chunk, never allocated
        url = server.url("/big", host="docs.allowed.test")  # the test resolver points that name at 127.0.0.1

`hits` counts requests per path and `sent` the body bytes written per path, so a test can show that a refused
request never arrived and that a cut-off download stopped early. Unknown paths answer 404.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

Responder = Callable[["_Handler"], None]
_CHUNK = 64 * 1024


class HostileServer:
    def __init__(self) -> None:
        self.routes: dict[str, Responder] = {}
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.host_headers: dict[str, str] = {}  # the Host header of the last request per path
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "use the server inside 'with'"
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, responder: Responder) -> None:
        """Answer `path` with `responder`; a path ending in "*" matches every path it starts."""
        self.routes[path] = responder

    def responder(self, path: str) -> Responder | None:
        if path in self.routes:
            return self.routes[path]
        prefixes = [key for key in self.routes if key.endswith("*") and path.startswith(key[:-1])]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    def __enter__(self) -> HostileServer:
        server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()  # ends drips and stalls
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def count(self, path: str, sent: int = 0) -> None:
        with self._lock:
            if sent:
                self.sent[path] += sent
            else:
                self.hits[path] += 1


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up on purpose here (size limits, timeouts)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    owner: HostileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def route_path(self) -> str:
        return urlsplit(self.path).path

    def do_GET(self) -> None:
        path = self.route_path
        self.owner.count(path)
        self.owner.host_headers[path] = self.headers.get("Host", "")
        responder = self.owner.responder(path)
        with contextlib.suppress(OSError):  # the client may hang up at any moment
            if responder is None:
                body(b"not found", "text/plain", status=404)(self)
            else:
                responder(self)

    def do_POST(self) -> None:
        self.do_GET()

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.owner.count(self.route_path, sent=len(data))


def _make_handler(owner: HostileServer) -> type[_Handler]:
    return type("Handler", (_Handler,), {"owner": owner})


# --- responders ---------------------------------------------------------------------------------------------------


def body(
    content: bytes | str,
    content_type: str = "text/html; charset=utf-8",
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Responder:
    data = content.encode() if isinstance(content, str) else content

    def respond(handler: _Handler) -> None:
        handler.head(status, {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})})
        handler.write(data)

    return respond


def redirect(location: str | Callable[[], str], status: int = 302) -> Responder:
    def respond(handler: _Handler) -> None:
        target = location() if callable(location) else location
        handler.head(status, {"Location": target, "Content-Length": "0"})

    return respond


def stream(
    total: int,
    *,
    content_type: str = "text/html; charset=utf-8",
    declare_length: bool = False,
    headers: Mapping[str, str] | None = None,
    chunks: Callable[[], Iterable[bytes]] | None = None,
) -> Responder:
    """`total` bytes of HTML-ish filler written chunk by chunk until the client hangs up (no Content-Length unless
    `declare_length`: the body then ends when the connection closes)."""

    def filler() -> Iterator[bytes]:
        piece = (b"<p>" + b"x" * (_CHUNK - 7) + b"</p>\n")[:_CHUNK]
        remaining = total
        while remaining > 0:
            yield piece[:remaining]
            remaining -= len(piece)

    def respond(handler: _Handler) -> None:
        extra = {"Content-Length": str(total)} if declare_length else {"Connection": "close"}
        handler.head(200, {"Content-Type": content_type, **extra, **(headers or {})})
        handler.close_connection = True
        for chunk in (chunks or filler)():
            if handler.owner.stopping.is_set():
                return
            handler.write(chunk)

    return respond


def drip(interval: float, count: int = 10_000, *, content_type: str = "text/html") -> Responder:
    """Slow loris: headers at once, then one byte every `interval` seconds."""

    def respond(handler: _Handler) -> None:
        handler.head(200, {"Content-Type": content_type, "Connection": "close"})
        handler.close_connection = True
        for _ in range(count):
            if handler.owner.stopping.wait(interval):
                return
            handler.write(b"x")

    return respond


def stall(seconds: float = 60.0) -> Responder:
    """Accept the request, then say nothing at all."""

    def respond(handler: _Handler) -> None:
        handler.owner.stopping.wait(seconds)
        handler.close_connection = True

    return respond


def gzip_bomb(decompressed: int) -> bytes:
    """`decompressed` zero bytes, gzipped (about 1000:1), built in pieces so the big side never exists."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(decompressed // len(zeros))]
    parts.append(compressor.flush())
    return b"".join(parts)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
