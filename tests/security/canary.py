"""A canary: a TCP listener on a forbidden loopback port that records every connection made to it.

It listens on 127.0.0.1 and, where the machine has IPv6, on ::1 with the same port, so a browser that reached
the port by any spelling of loopback (`127.0.0.1`, `[::1]`, `[::ffff:127.0.0.1]`, `localhost`, `2130706433`)
would be counted. It answers a minimal HTTP response, so a connection that a test allows on purpose (the
positive control) completes like a real server's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\ncanary"


class Canary:
    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []  # peer addresses, in the order they connected
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.port = 0

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.connections)

    def __enter__(self) -> Canary:
        first = socket.create_server(("127.0.0.1", 0))
        self.port = first.getsockname()[1]
        self._sockets.append(first)
        if socket.has_ipv6:
            with contextlib.suppress(OSError):  # no ::1 on this machine: IPv4 is the only loopback to watch
                self._sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        for listener in self._sockets:
            listener.settimeout(0.05)
            thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for listener in self._sockets:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections.append((str(peer[0]), int(peer[1])))
            with connection, contextlib.suppress(OSError):
                connection.settimeout(2)
                with contextlib.suppress(TimeoutError):
                    connection.recv(65536)
                connection.sendall(_RESPONSE)
