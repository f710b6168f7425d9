"""The UI's routes, assembled into one Starlette app behind the security headers and the Host check."""

from __future__ import annotations

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from crawlrag.server.runtime import NotStartedError, ServerRuntime
from crawlrag.server.ui.backend import UiBackend
from crawlrag.server.ui.guard import Guard
from crawlrag.server.ui.pages import Pages
from crawlrag.server.ui.render import Renderer
from crawlrag.server.ui.security import HostCheck, SecurityHeaders, SessionKeeper

STATIC_PATH = "/ui/static"


def ui_routes(pages: Pages, guard: Guard) -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    return [
        Route("/", guard(pages.sources), methods=get),
        Route("/sources/delete", guard(pages.confirm_delete), methods=get),
        Route("/sources/delete", guard(pages.delete, kind="form"), methods=post),
        Route("/sources/refresh", guard(pages.refresh, kind="form"), methods=post),
        Route("/crawl", guard(pages.crawl_form), methods=get),
        Route("/crawl", guard(pages.start_crawl, kind="form"), methods=post),
        Route("/jobs", guard(pages.jobs), methods=get),
        Route("/jobs.json", guard(pages.jobs_json, kind="json"), methods=get),
        Route("/jobs/cancel", guard(pages.cancel, kind="form"), methods=post),
        Route("/jobs/resume", guard(pages.resume, kind="form"), methods=post),
        Route("/search", guard(pages.search), methods=get),
        Route("/status", guard(pages.health), methods=get),
        Route("/login", guard(pages.login_form, public=True), methods=get),
        Route("/login", guard(pages.login, kind="form", public=True), methods=post),
        Route("/logout", guard(pages.logout, kind="form", public=True), methods=post),
        Mount(STATIC_PATH, StaticFiles(packages=[("crawlrag.server.ui", "static")]), name="static"),
    ]


def build_ui_app(runtime: ServerRuntime, transport_security: TransportSecuritySettings) -> ASGIApp:
    """The UI as an ASGI app; `transport_security` is what /mcp checks Host and Origin against."""
    keeper = SessionKeeper(runtime.settings.mcp_auth_token)
    hosts = HostCheck(transport_security)
    guard = Guard(keeper, hosts)
    pages = Pages(UiBackend(runtime), Renderer(keeper), guard)

    async def not_running(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("the crawlrag server is not running\n", status_code=503)

    return Starlette(
        routes=ui_routes(pages, guard),
        middleware=[Middleware(SecurityHeaders, hosts=hosts)],
        exception_handlers={NotStartedError: not_running},
    )
