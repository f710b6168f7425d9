"""Who may use the web UI: signed session cookies, CSRF tokens, Host/Origin checks and the security headers.

Every browser gets a session cookie (HttpOnly, SameSite=Strict) whose value is signed, never the token itself.
With MCP_AUTH_TOKEN set a session is only *authenticated* after the login form received the token; without it
every session is, and the cookie still carries the CSRF secret, so a page on another site can neither read the UI
(Host check against DNS rebinding, as on /mcp) nor post its forms (CSRF token, Origin and Sec-Fetch-Site checks).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE_NAME = "crawlrag_session"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
# Scripts, styles and images only from the UI's own static files; no inline script, no framing, forms post home.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    expires: int
    authenticated: bool


class SessionKeeper:
    """Issues and checks session cookies and the CSRF tokens bound to them."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value().encode() if token is not None else None
        # Derived from the token, sessions outlive a restart and end when the token changes; without a token
        # nothing secret is shared with the operator, so a per-process key is enough.
        self._key = (
            hmac.new(self._token, b"crawlrag-ui-session-v1", hashlib.sha256).digest()
            if self._token is not None
            else secrets.token_bytes(32)
        )

    @property
    def login_required(self) -> bool:
        return self._token is not None

    def token_matches(self, presented: str) -> bool:
        if self._token is None:
            return True
        # compare_digest: the time taken must not reveal how much of the token matched.
        return hmac.compare_digest(presented.encode(), self._token)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new(self, authenticated: bool) -> Session:
        return Session(secrets.token_urlsafe(18), int(time.time()) + SESSION_SECONDS, authenticated)

    def anonymous(self) -> Session:
        """A fresh session: authenticated at once when no token is configured."""
        return self.new(authenticated=not self.login_required)

    def encode(self, session: Session) -> str:
        body = f"{session.nonce}.{session.expires}.{int(session.authenticated)}"
        return f"{body}.{self._sign(body)}"

    def decode(self, value: str | None) -> Session | None:
        if not value or len(value) > 200:
            return None
        body, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        nonce, _, rest = body.partition(".")
        expires, _, flag = rest.partition(".")
        if not expires.isdigit() or flag not in ("0", "1") or int(expires) < time.time():
            return None
        # A session signed before a token was configured must not count as logged in now (keys differ anyway).
        return Session(nonce, int(expires), flag == "1" or not self.login_required)

    def csrf_token(self, session: Session) -> str:
        return self._sign(f"csrf.{session.nonce}")

    def csrf_ok(self, session: Session, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.csrf_token(session).encode())

    def set_cookie(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.encode(session),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def _host_allowed(host: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith(":*"):
            name, _, port = host.rpartition(":")
            if name == pattern[:-2] and port.isdigit():
                return True
        elif host == pattern:
            return True
    return False


class HostCheck:
    """The Host/Origin rules of /mcp (DNS rebinding), applied to the UI."""

    def __init__(self, settings: TransportSecuritySettings) -> None:
        self._settings = settings

    def host_ok(self, request: Request) -> bool:
        if not self._settings.enable_dns_rebinding_protection:
            return True
        return _host_allowed(request.headers.get("host", ""), self._settings.allowed_hosts)

    def same_origin_post(self, request: Request) -> bool:
        """False for a form posted from another site (browsers send Origin and Sec-Fetch-Site on POST)."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True  # an old browser or a script: the CSRF token still has to match
        return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


class SecurityHeaders:
    """Adds the security headers to every UI response and answers 421 to a Host the server is not known by."""

    def __init__(self, app: ASGIApp, hosts: HostCheck) -> None:
        self.app = app
        self._hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        if not self._hosts.host_ok(Request(scope)):
            response = Response("unknown Host header\n", status_code=421, media_type="text/plain")
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
