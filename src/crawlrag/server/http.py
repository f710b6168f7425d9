"""HTTP side of the server: /mcp (Streamable HTTP), /health, /metrics, the web UI, auth and DNS-rebinding checks."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crawlrag.config import Settings
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.ui import build_ui_app

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(host: str) -> TransportSecuritySettings:
    """Host/Origin checks against DNS rebinding: a page on another site must not reach a local server.

    On a wildcard bind the names clients use are unknown, so the checks are off and the bearer token (warned
    about at start when missing) is what protects the server.
    """
    if host in _WILDCARD_HOSTS:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = list(dict.fromkeys([*_LOOPBACK_NAMES, shown]))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*names, *(f"{name}:*" for name in names)],
        allowed_origins=[
            f"{scheme}://{name}{port}" for name in names for scheme in ("http", "https") for port in ("", ":*")
        ],
    )


def startup_warnings(settings: Settings, host: str) -> list[str]:
    if is_loopback(host) or settings.mcp_auth_token is not None:
        return []
    return [
        f"serving on {host}, which other machines can reach, without MCP_AUTH_TOKEN: anyone who can connect "
        "can crawl through this server and read its index. Set MCP_AUTH_TOKEN or bind 127.0.0.1."
    ]


class BearerAuthMiddleware:
    """Require `Authorization: Bearer <MCP_AUTH_TOKEN>` on /mcp (and /metrics unless METRICS_PUBLIC)."""

    def __init__(self, app: ASGIApp, token: str, protect_metrics: bool) -> None:
        self.app = app
        self._token = token.encode()
        self._protected = (MCP_PATH, "/metrics") if protect_metrics else (MCP_PATH,)

    def _needs_token(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self._protected)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, presented = value.partition(b" ")
                # compare_digest: the time taken must not reveal how much of the token matched.
                return scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), self._token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._needs_token(scope["path"]) and not self._authorized(scope):
            response = JSONResponse(
                {"error": "missing or wrong bearer token (Authorization: Bearer <MCP_AUTH_TOKEN>)"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="crawlrag"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def service_routes(runtime: ServerRuntime) -> list[BaseRoute]:
    """/health and /metrics, shared by the HTTP app and the stdio mode's HEALTH_PORT listener."""

    async def health(request: Request) -> Response:
        document = await runtime.health()
        # 503 until the embedding model is ready, so readiness probes hold traffic back while it loads.
        code = 503 if document["status"] in ("error", "starting") else 200
        return Response(json.dumps(document, default=str), status_code=code, media_type="application/json")

    async def metrics(request: Request) -> Response:
        if not runtime.started:
            return Response("the server is not running\n", status_code=503, media_type="text/plain")
        return Response(generate_latest(runtime.context.registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/health", health, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]


def protect(app: ASGIApp, settings: Settings) -> ASGIApp:
    if settings.mcp_auth_token is None:
        return app
    token = settings.mcp_auth_token.get_secret_value()
    return BearerAuthMiddleware(app, token, protect_metrics=not settings.metrics_public)


def build_http_app(runtime: ServerRuntime, mcp: MCPServer[Any], host: str) -> ASGIApp:
    """The ASGI app for `crawlrag serve --transport http`. Its lifespan enters the runtime once for the process,
    then the SDK's session manager; every MCP session shares that runtime."""
    sdk_app = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(host),
        host=host,
        stateless_http=runtime.settings.http_stateless,
    )
    session_manager = mcp.session_manager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime, session_manager.run():
            yield

    # The web UI takes every path the routes before it do not (its pages, /login, /ui/static/...).
    ui = Mount("/", app=build_ui_app(runtime, transport_security(host)))
    app = Starlette(routes=[*service_routes(runtime), *sdk_app.routes, ui], lifespan=lifespan)
    return protect(app, runtime.settings)


def build_health_app(runtime: ServerRuntime) -> ASGIApp:
    """/health and /metrics alone, for HEALTH_PORT in stdio mode (the runtime is entered by the stdio runner)."""
    return protect(Starlette(routes=service_routes(runtime)), runtime.settings)
