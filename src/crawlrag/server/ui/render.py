"""Jinja2 templates (package data of crawlrag.server.ui) and the filters they use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from crawlrag.server.runtime import package_version
from crawlrag.server.ui.security import CSRF_FIELD, Session, SessionKeeper

# (path, label) of the navigation bar, in order.
NAV = (
    ("/", "Sources"),
    ("/crawl", "Add a crawl"),
    ("/jobs", "Jobs"),
    ("/search", "Search"),
    ("/status", "Health"),
)


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


class Renderer:
    def __init__(self, keeper: SessionKeeper) -> None:
        self.keeper = keeper
        self.env = Environment(
            loader=PackageLoader("crawlrag.server.ui", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,  # a misspelt or missing variable is an error, not an empty string
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, number=number, score=score, ms=milliseconds)
        self.env.globals.update(nav=NAV, csrf_field=CSRF_FIELD, version=package_version())

    def page(
        self, request: Request, session: Session, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("error", None)
        html = self.env.get_template(template).render(
            current=request.url.path,
            csrf=self.keeper.csrf_token(session),
            login_required=self.keeper.login_required,
            authenticated=session.authenticated,
            **context,
        )
        return HTMLResponse(html, status_code=status)
