"""The browser's egress proxy on its own, spoken to over raw sockets: every CONNECT and request is vetted by
the crawler's policy, refused ones open no connection (a canary counts), allowed ones reach the pinned address.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest
from canary import Canary
from hostile_http import HostileServer, body
from security_helpers import DOCS_HOST, INTERNAL_HOST, SettingsFactory, suite_resolver

from crawlrag.crawl.egress_proxy import EgressProxy
from crawlrag.crawl.guard import NetworkPolicy
from crawlrag.crawl.http import HttpClient

pytestmark = pytest.mark.hostile


@pytest.fixture
async def proxy(hostile_settings: SettingsFactory) -> AsyncIterator[EgressProxy]:
    settings = hostile_settings()
    async with HttpClient(settings, NetworkPolicy(settings, resolver=suite_resolver())) as http:
        egress = EgressProxy(http.policy, http, timeout=5)
        await egress.listen()
        # A task, not a task group: pytest-asyncio tears the fixture down in another task than it set it up in
        # (the renderer runs the proxy the same way, for the same reason).
        serving = asyncio.create_task(egress.serve())
        yield egress
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def exchange(proxy: EgressProxy, head: str, then: bytes = b"") -> bytes:
    """Send `head` (and, once the proxy answered, `then`); return everything the proxy sent until it closed."""
    host, port = proxy.address.rsplit(":", 1)
    received = b""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(head.encode("latin-1"))
            if then:
                received = await stream.receive()
                await stream.send(then)
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


# CONNECT targets that must be refused, with the rule the answer must name. None of them is contacted.
REFUSED_TUNNELS = [
    ("127.0.0.1:{canary}", "non-public address 127.0.0.1 (loopback)"),
    ("[::1]:{canary}", "non-public address ::1 (loopback)"),
    ("[::ffff:127.0.0.1]:{canary}", "loopback, inside the IPv6 address"),
    ("[::127.0.0.1]:{canary}", "as IPv4-compatible 127.0.0.1"),
    ("[::ffff:0:7f00:1]:{canary}", "as IPv4-translated (SIIT) 127.0.0.1"),
    ("[64:ff9b:1::7f00:1]:{canary}", "as local-use NAT64 127.0.0.1"),
    ("2130706433:{canary}", "non-public address 127.0.0.1 (loopback)"),
    (f"{INTERNAL_HOST}:{{canary}}", f"or add {INTERNAL_HOST} to ALLOWED_HOSTS"),
    ("169.254.169.254:80", "link-local"),
    ("[5f00::1]:443", "segment routing"),
    ("localhost:{canary}", "cannot resolve host"),  # the proxy resolves through the policy, never on its own
]


@pytest.mark.parametrize(("target", "words"), REFUSED_TUNNELS, ids=[case[0] for case in REFUSED_TUNNELS])
async def test_refused_tunnels_connect_nowhere(proxy: EgressProxy, target: str, words: str) -> None:
    with Canary() as canary:
        authority = target.replace("{canary}", str(canary.port))
        answer = await exchange(proxy, f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403 Forbidden"), answer[:200]
        assert words in answer.decode()
        assert canary.count == 0


async def test_allowed_tunnel_reaches_the_vetted_address(proxy: EgressProxy, server: HostileServer) -> None:
    """DOCS_HOST exists only in the test resolver: reaching the server proves the tunnel used the vetted address."""
    server.route("/through", body("TUNNELLED", "text/plain"))
    authority = f"{DOCS_HOST}:{server.port}"
    request = f"GET /through HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode()
    answer = await exchange(proxy, f"CONNECT {authority} HTTP/1.1\r\n\r\n", then=request)
    established = b"HTTP/1.1 200 Connection Established\r\n\r\n"
    assert answer.startswith(established) and answer[len(established) :].startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"TUNNELLED") and server.hits["/through"] == 1


async def test_plain_requests_go_through_the_crawlers_client(proxy: EgressProxy, server: HostileServer) -> None:
    server.route("/page", body("<p>PAGE</p>", headers={"X-Kept": "yes"}))
    with Canary() as canary:
        fine = await exchange(proxy, f"GET {server.url('/page', host=DOCS_HOST)} HTTP/1.1\r\nAccept: */*\r\n\r\n")
        refused = await exchange(proxy, f"GET http://127.0.0.1:{canary.port}/ HTTP/1.1\r\n\r\n")
        mapped = await exchange(proxy, f"GET http://[::ffff:7f00:1]:{canary.port}/ HTTP/1.1\r\n\r\n")
        assert canary.count == 0
    assert fine.startswith(b"HTTP/1.1 200 OK") and b"x-kept: yes" in fine and fine.endswith(b"<p>PAGE</p>")
    assert refused.startswith(b"HTTP/1.1 502") and b"(loopback)" in refused
    assert mapped.startswith(b"HTTP/1.1 502") and b"loopback, inside the IPv6 address" in mapped


@pytest.mark.parametrize(
    ("head", "status"),
    [
        ("POST {url} HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", b"405"),
        ("PUT {url} HTTP/1.1\r\n\r\n", b"405"),
        ("GET {url} HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", b"403"),
        ("GET /page HTTP/1.1\r\nHost: docs\r\n\r\n", b"400"),  # not a proxy request
        ("GET ftp://example.com/ HTTP/1.1\r\n\r\n", b"400"),
        ("CONNECT example.com HTTP/1.1\r\n\r\n", b"400"),  # no port
        ("CONNECT user@example.com:443 HTTP/1.1\r\n\r\n", b"400"),
        ("CONNECT example.com:443/path HTTP/1.1\r\n\r\n", b"400"),
        ("NONSENSE\r\n\r\n", b"400"),
        ("GET {url} HTTP/1.1\r\nbad header\r\n\r\n", b"400"),
        ("GET {url} HTTP/1.1\r\nX-Long: " + "a" * 40_000 + "\r\n\r\n", b"431"),
    ],
)
async def test_anything_but_reads_and_tunnels_is_refused(
    proxy: EgressProxy, server: HostileServer, head: str, status: bytes
) -> None:
    server.route("/page", body("<p>PAGE</p>"))
    answer = await exchange(proxy, head.replace("{url}", server.url("/page", host=DOCS_HOST)))
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert server.hits["/page"] == 0


async def test_a_failing_connection_does_not_stop_the_proxy(proxy: EgressProxy, server: HostileServer) -> None:
    server.route("/page", body("<p>PAGE</p>"))
    host, port = proxy.address.rsplit(":", 1)
    for _ in range(3):  # clients that hang up mid-head
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(b"GET http://")
    answer = await exchange(proxy, f"GET {server.url('/page', host=DOCS_HOST)} HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")


async def test_cancelling_the_proxy_closes_its_socket(hostile_settings: SettingsFactory) -> None:
    settings = hostile_settings()
    async with HttpClient(settings, NetworkPolicy(settings, resolver=suite_resolver())) as http:
        egress = EgressProxy(http.policy, http, timeout=5)
        host, port = (await egress.listen()).rsplit(":", 1)
        serving = asyncio.create_task(egress.serve())
        await asyncio.sleep(0.05)
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    with pytest.raises(OSError):
        await anyio.connect_tcp(host, int(port))
