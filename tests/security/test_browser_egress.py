"""Browser egress: a rendered page can make Chromium open no TCP connection to a forbidden address.

A canary listens on a loopback port. The test site is reached through DOCS_HOST (exempt by ALLOWED_HOSTS, the
test resolver points it at 127.0.0.1); the canary's address is not exempt, in any spelling. Each page below
tries to reach the canary one way (navigations, forms, every kind of subrequest) and the canary must see zero
connections, while a control page that names the canary through an exempt name shows the canary counts what
reaches it. Chromium runs for real (`browser` marker).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
from canary import Canary
from hostile_http import HostileServer, Responder, body
from security_helpers import DOCS_HOST, SettingsFactory, suite_resolver

from crawlrag.crawl.browser import BrowserRenderer
from crawlrag.crawl.guard import NetworkPolicy
from crawlrag.crawl.http import HttpClient
from crawlrag.crawl.navigation import NavigatedAwayError

pytestmark = [pytest.mark.hostile, pytest.mark.browser, pytest.mark.usefixtures("no_leftover_chromium")]

CANARY_ALIAS = "canary.allowed.test"  # exempt like DOCS_HOST: the positive control reaches the canary with it
# Every spelling of the canary's loopback address; none is exempt.
SPELLINGS = ("127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1")
SETTLE_SECONDS = 1.5  # after a render, for connections a page started late (async requests, workers)
CONTENT = "<main><h1>Probe page</h1><p id='out'>The probe ran; this text is what the crawler keeps.</p></main>"

# (case, page snippet, the spelling of the canary's address it uses); JavaScript location tries every spelling.
NAVIGATIONS: list[tuple[str, str, str]] = [
    *(("javascript location", "<script>location.href = 'http://{target}/js';</script>", s) for s in SPELLINGS),
    ("javascript location.replace", "<script>location.replace('http://{target}/replace');</script>", "[::1]"),
    ("meta refresh", "<meta http-equiv='refresh' content='0;url=http://{target}/refresh'>", "127.0.0.1"),
    (
        "form post",
        "<form method='post' action='http://{target}/form'><input name='q' value='1'></form>"
        "<script>document.forms[0].submit();</script>",
        "localhost",
    ),
    (
        "form get",
        "<form action='http://{target}/form-get'><input name='q' value='1'></form>"
        "<script>document.forms[0].submit();</script>",
        "[::ffff:127.0.0.1]",
    ),
    (
        "link click",
        "<a id='go' href='http://{target}/click'>go</a><script>document.getElementById('go').click();</script>",
        "2130706433",
    ),
]
# A popup is another page: its navigation is refused like any other, and the render it came from goes on.
POPUP = "<script>window.open('http://{target}/popup');</script>"

SUBREQUESTS = """<!DOCTYPE html><html><head><title>Subrequests</title>
<link rel="preconnect" href="http://{target}">
<link rel="dns-prefetch" href="http://{target}">
<link rel="prefetch" href="http://{target}/prefetch">
<link rel="stylesheet" href="http://{target}/style.css">
<script src="http://{target}/script.js"></script>
</head><body>{content}
<img src="http://{target}/img.png">
<iframe src="http://{target}/frame"></iframe>
<video src="http://{target}/video.mp4"></video>
<object data="http://{target}/object"></object>
<script>
const target = "http://{target}";
const attempts = [];
function attempt(name, action) {{
  try {{ action(); attempts.push(name); }} catch (error) {{ attempts.push(name + ":" + error.name); }}
}}
attempt("fetch", () => fetch(target + "/fetch").catch(() => {{}}));
attempt("xhr", () => {{ const r = new XMLHttpRequest(); r.open("GET", target + "/xhr", false); r.send(); }});
attempt("xhr-post", () => {{ const r = new XMLHttpRequest(); r.open("POST", target + "/xhr-post"); r.send("x"); }});
attempt("websocket", () => new WebSocket("ws://{target}/ws"));
attempt("eventsource", () => new EventSource(target + "/events"));
attempt("worker", () => new Worker(target + "/worker.js"));
attempt("shared-worker", () => new SharedWorker(target + "/shared-worker.js"));
attempt("beacon", () => navigator.sendBeacon(target + "/beacon", "x"));
attempt("image", () => {{ new Image().src = target + "/image-object.png"; }});
attempt("import", () => import(target + "/module.js").catch(() => {{}}));
attempt("blob-worker", () => new Worker(URL.createObjectURL(new Blob(
  ["fetch('" + target + "/from-worker').catch(() => {{}}); new WebSocket('ws://{target}/worker-ws');"]))));
document.getElementById("out").textContent += " Attempts: " + attempts.join(", ") + ".";
</script></body></html>"""


@pytest.fixture
def canary() -> AsyncIterator[Canary]:
    with Canary() as listening:
        yield listening


@pytest.fixture
async def renderer(hostile_settings: SettingsFactory) -> AsyncIterator[BrowserRenderer]:
    settings = hostile_settings(browser="always", allowed_hosts=[DOCS_HOST, CANARY_ALIAS], request_timeout_seconds=10)
    resolver = suite_resolver(**{CANARY_ALIAS: ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]})
    async with HttpClient(settings, NetworkPolicy(settings, resolver=resolver)) as http:
        browser = BrowserRenderer(settings, http)
        try:
            yield browser
        finally:
            await browser.close()


def settle_then(count: Callable[[], int]) -> int:
    time.sleep(SETTLE_SECONDS)
    return count()


def probe_page(snippet: str, canary: Canary, spelling: str) -> Responder:
    return body(f"<html><head></head><body>{CONTENT}{snippet.format(target=f'{spelling}:{canary.port}')}</body></html>")


async def test_navigations_to_a_forbidden_address_end_the_render_and_never_connect(
    server: HostileServer, canary: Canary, renderer: BrowserRenderer
) -> None:
    server.route("/plain", body(f"<html><body>{CONTENT}</body></html>"))
    assert "Probe page" in (await renderer.render(server.url("/plain", host=DOCS_HOST))).html
    for number, (case, snippet, spelling) in enumerate(NAVIGATIONS):
        path = f"/navigation/{number}"
        server.route(path, probe_page(snippet, canary, spelling))
        with pytest.raises(NavigatedAwayError, match="tried to navigate away"):
            await renderer.render(server.url(path, host=DOCS_HOST))
        assert canary.count == 0, f"{case} to {spelling}: {canary.connections}"
        assert server.hits[path] == 1, f"{case} to {spelling}: the page was not loaded once"
    server.route("/popup", probe_page(POPUP, canary, "127.0.0.1"))
    assert "Probe page" in (await renderer.render(server.url("/popup", host=DOCS_HOST))).html
    assert settle_then(lambda: canary.count) == 0, canary.connections


async def test_subrequests_to_a_forbidden_address_never_connect(
    server: HostileServer, canary: Canary, renderer: BrowserRenderer
) -> None:
    for spelling in ("127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"):
        path = f"/subrequests/{spelling}"
        server.route(path, body(SUBREQUESTS.format(target=f"{spelling}:{canary.port}", content=CONTENT)))
        rendered = await renderer.render(server.url(path, host=DOCS_HOST))
        assert "Attempts: fetch, xhr" in rendered.html, rendered.html[-600:]
        assert settle_then(lambda: canary.count) == 0, f"subrequests to {spelling}: {canary.connections}"

    # The control: the same page, naming the canary by an exempt name, does reach it.
    server.route("/control", body(SUBREQUESTS.format(target=f"{CANARY_ALIAS}:{canary.port}", content=CONTENT)))
    await renderer.render(server.url("/control", host=DOCS_HOST))
    assert canary.count > 0
