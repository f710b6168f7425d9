"""The wrapper every UI endpoint goes through: session cookie, login, CSRF and the size of form bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, quote

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from crawlrag.server.ui.security import COOKIE_NAME, CSRF_FIELD, HostCheck, Session, SessionKeeper

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 50
# A wrong token costs the guesser this long; the comparison itself is constant-time.
FAILED_LOGIN_DELAY_SECONDS = 0.5

Form = dict[str, str]
Handler = Callable[[Request, Session, Form], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class FormTooLarge(ValueError):
    pass


async def read_form(request: Request) -> Form:
    """An application/x-www-form-urlencoded body, bounded in size and fields; the last value of a name wins."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge
    body = b""
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormTooLarge from None
    return dict(pairs)


def safe_next(target: str | None) -> str:
    """Only a path on this server: never another site (`//host`, `/\\host`, `https://...`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class Guard:
    def __init__(self, keeper: SessionKeeper, hosts: HostCheck) -> None:
        self.keeper = keeper
        self.hosts = hosts

    def __call__(self, handler: Handler, *, kind: str = "page", public: bool = False) -> Endpoint:
        """`kind`: page (GET redirects to the login form), json (401) or form (POST, needs a CSRF token)."""

        async def endpoint(request: Request) -> Response:
            session = self.keeper.decode(request.cookies.get(COOKIE_NAME))
            fresh = session is None
            if session is None:
                session = self.keeper.anonymous()
            form: Form = {}
            if request.method == "POST":
                if not self.hosts.same_origin_post(request):
                    return PlainTextResponse("cross-site form posts are refused\n", status_code=403)
                try:
                    form = await read_form(request)
                except FormTooLarge:
                    return PlainTextResponse("the form is too large or not form-encoded\n", status_code=413)
                if fresh or not self.keeper.csrf_ok(session, form.get(CSRF_FIELD, "")):
                    return PlainTextResponse(
                        "this form has expired or came from another site: reload the page and send it again\n",
                        status_code=403,
                    )
            if not public and not session.authenticated:
                if kind == "json":
                    return JSONResponse({"error": "log in first"}, status_code=401)
                if request.method == "GET":
                    response = login_redirect(request)
                else:
                    response = PlainTextResponse("log in first\n", status_code=403)
            else:
                response = await handler(request, session, form)
            if fresh:
                self.keeper.set_cookie(response, request, session)
            return response

        return endpoint

    async def wrong_token_pause(self) -> None:
        await anyio.sleep(FAILED_LOGIN_DELAY_SECONDS)
