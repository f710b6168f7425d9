"""The web UI with MCP_AUTH_TOKEN set: the login form in Chromium, and over plain HTTP every route and form
refusing requests without the session cookie, cross-site posts and unknown Host headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ui_helpers import TOKEN, WAIT_MS, ConsoleErrors, UiServer

pytestmark = pytest.mark.slow

PAGES = ("/", "/sources/delete?source=x", "/crawl", "/jobs", "/search?query=x", "/status")
FORMS = ("/sources/delete", "/sources/refresh", "/crawl", "/jobs/cancel", "/jobs/resume")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(response: httpx.Response) -> str:
    found = CSRF.search(response.text)
    assert found, response.text[:500]
    return found.group(1)


@pytest.fixture
def http(token_server: UiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=token_server.base, timeout=60) as client:
        yield client


def log_in(http: httpx.Client) -> str:
    """Log `http` in through the form; returns the CSRF token of the new session."""
    login = http.get("/login")
    answer = http.post("/login", data={"csrf": csrf_of(login), "token": TOKEN, "next": "/jobs"})
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
    return csrf_of(http.get("/jobs"))


@pytest.mark.browser
def test_login_with_the_token(browser: Any, token_server: UiServer) -> None:
    context = browser.new_context(base_url=token_server.base)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors = ConsoleErrors(token_server.base)
    errors.watch(tab)
    try:
        tab.goto("/jobs")
        tab.wait_for_url(re.compile(r"/login\?next=%2Fjobs$"))
        assert tab.get_by_role("navigation").count() == 0  # nothing but the form before logging in
        tab.get_by_label("Access token").fill("not-the-token")
        tab.get_by_role("button", name="Log in").click()
        assert "not the server's MCP_AUTH_TOKEN" in tab.inner_text("[role=alert]")

        tab.get_by_label("Access token").fill(TOKEN)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(re.compile(r"/jobs$"))
        assert tab.get_by_role("heading", name="Crawl jobs").is_visible()
        (cookie,) = [c for c in context.cookies() if c["name"] == "crawlrag_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert TOKEN not in cookie["value"]

        tab.get_by_role("button", name="Log out").click()
        tab.wait_for_url(re.compile(r"/login$"))
        tab.goto("/status")
        tab.wait_for_url(re.compile(r"/login\?next="))
    finally:
        context.close()
    # Chromium logs the 401 of the wrong token as a failed resource; nothing else may show up.
    assert all("401" in error for error in errors.seen), errors.seen


def test_every_route_and_form_refuses_requests_without_the_cookie(http: httpx.Client) -> None:
    for path in PAGES:
        answer = http.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    assert http.get("/jobs.json").status_code == 401
    for path in (*FORMS, "/logout", "/login"):
        assert http.post(path, data={"job_id": "x", "source": "x", "url": "http://a/"}).status_code == 403, path

    # A session that did not log in (its cookie and CSRF token come from the login page) gets no further.
    anonymous = csrf_of(http.get("/login"))
    for path in FORMS:
        answer = http.post(path, data={"csrf": anonymous, "job_id": "x", "source": "x"})
        assert answer.status_code == 403 and "log in first" in answer.text, path
    for path in PAGES:
        assert http.get(path).status_code == 303, path

    # Neither the raw token nor a tampered session passes for a session cookie.
    http.cookies.clear()
    for forged in (TOKEN, "x.9999999999.1.deadbeef"):
        answer = http.get("/jobs", cookies={"crawlrag_session": forged})
        assert answer.status_code == 303, forged
    assert http.get("/ui/static/ui.css").status_code == 200  # the stylesheet and script are public


def test_a_logged_in_session_cookie_is_signed_and_opens_the_pages(http: httpx.Client) -> None:
    csrf = log_in(http)
    cookie = http.cookies["crawlrag_session"]
    assert TOKEN not in cookie
    for path in PAGES:
        assert http.get(path).status_code in (200, 400), path  # 400: the confirmation page of an unknown source
    assert http.get("/jobs.json").json() == {"jobs": []}
    # The form works with the session's token (an unknown job is a clear error on the Jobs page)...
    answer = http.post("/jobs/cancel", data={"csrf": csrf, "job_id": "nope"})
    assert answer.status_code == 409 and "no crawl job with id" in answer.text
    # ...and not without it, nor with another session's.
    assert http.post("/jobs/cancel", data={"job_id": "nope"}).status_code == 403
    assert http.post("/jobs/cancel", data={"csrf": "0" * 64, "job_id": "nope"}).status_code == 403
    # The cookie is for the UI: /mcp still wants the bearer token.
    assert http.post("/mcp", json={}).status_code == 401


def test_a_cross_site_form_post_is_refused(http: httpx.Client, site_url: str) -> None:
    csrf = log_in(http)
    form = {"csrf": csrf, "url": site_url + "/", "max_depth": "0", "max_pages": "1", "include": "", "exclude": ""}
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        answer = http.post("/crawl", data=form, headers=headers)
        assert answer.status_code == 403 and "cross-site" in answer.text, headers
    assert http.get("/jobs.json").json() == {"jobs": []}  # nothing was started
    same_site = {"Origin": str(http.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    answer = http.post("/sources/delete", data={"csrf": csrf, "source": "unknown.example"}, headers=same_site)
    assert answer.status_code == 400 and "there is no source" in answer.text


def test_security_headers_and_host_check(http: httpx.Client, token_server: UiServer) -> None:
    for path in ("/login", "/", "/ui/static/ui.js", "/no-such-page"):
        headers = http.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy, path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", path
    # DNS rebinding: a name the server is not bound to is refused, as on /mcp.
    port = token_server.base.rsplit(":", 1)[1]
    answer = http.get("/login", headers={"Host": f"evil.example:{port}"})
    assert answer.status_code == 421
    assert http.get("/login", headers={"Host": f"localhost:{port}"}).status_code == 200
