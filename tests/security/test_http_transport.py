"""The Streamable HTTP transport from outside: requests without the token, with a forged Host or Origin.

The protection itself (bearer token, Host/Origin checks, the warning on a non-loopback bind) belongs to
crawlrag.server.http; this checks it as a hostile client sees it, on the app `crawlrag serve --transport http`
runs, served by uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from security_helpers import SettingsFactory, make_context, wait_for

from crawlrag.config import Settings
from crawlrag.server.app import build_mcp_server
from crawlrag.server.http import build_http_app, startup_warnings
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.serve import EmbeddedServer, uvicorn_config

pytestmark = pytest.mark.hostile

TOKEN = "correct-horse-battery-staple-0123456789"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, in a thread with its own event loop (the app's lifespan enters the runtime)."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path_factory.mktemp('http') / 'http.db'}",
        mcp_auth_token=TOKEN,
        metrics_public=False,
        allow_private_network=False,
        browser="never",
    )
    context = make_context(settings)
    runtime = ServerRuntime(settings, context=context)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build_http_app(runtime, build_mcp_server(runtime), "127.0.0.1")
    server = EmbeddedServer(uvicorn_config(app, "127.0.0.1", port, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        context.close()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-Auth-Token": TOKEN},
    ],
    ids=["none", "wrong", "empty", "basic-scheme", "prefix", "longer", "other-header"],
)
def test_mcp_requires_the_bearer_token(headers: dict[str, str], base: str) -> None:
    with httpx.Client() as http:
        refused = http.post(f"{base}/mcp?token={TOKEN}", json=INITIALIZE, headers={**ACCEPT, **headers})
        metrics = http.get(f"{base}/metrics", headers=headers)
        authorized = {**ACCEPT, "Authorization": f"Bearer {TOKEN}"}
        allowed = http.post(f"{base}/mcp", json=INITIALIZE, headers=authorized)
    assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
    assert TOKEN not in refused.text
    assert metrics.status_code == 401
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Host": "attacker.example:8051"}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "null"}, 403),
    ],
    ids=["host", "host-with-port", "origin", "null-origin"],
)
def test_dns_rebinding_host_and_origin_are_refused(headers: dict[str, str], status: int, base: str) -> None:
    """A web page on another site, resolving its own name to 127.0.0.1, must not get through even with the token."""
    with httpx.Client() as http:
        answer = http.post(
            f"{base}/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {TOKEN}", **headers}
        )
    assert answer.status_code in (status, 400, 403, 421), answer.text
    assert answer.status_code != 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_binding_beyond_loopback_without_a_token_warns(host: str, hostile_settings: SettingsFactory) -> None:
    (warning,) = startup_warnings(hostile_settings(), host)
    assert "MCP_AUTH_TOKEN" in warning
    assert startup_warnings(hostile_settings(mcp_auth_token=TOKEN), host) == []
    assert startup_warnings(hostile_settings(), "127.0.0.1") == []
