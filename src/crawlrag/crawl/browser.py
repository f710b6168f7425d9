"""A headless Chromium for pages that only have content after JavaScript runs.

crawlrag starts the browser process itself (Playwright's bundled Chromium when it is installed and starts,
else `CHROMIUM_PATH` or the system `chromium`) in its own process group with a throw-away profile, and lets
crawl4ai drive it over CDP. Owning the process is what makes cleanup certain: `close()` kills the whole group,
and a finaliser does the same if the renderer is dropped without being closed. The browser starts on first
use only; most documentation sites never need it.

Chromium never fetches a crawl target itself: every request of a page (the document, its scripts, styles, XHRs,
frames) is intercepted and answered with a GET through the crawler's `HttpClient`, so the private-network check,
address pinning, redirect checks and size limit apply to the browser exactly as to plain fetches. Other methods
and WebSockets are refused, and a navigation of the page away from the document it was asked to render ends
that render. What Playwright cannot intercept is switched off in every page before its scripts run: service
workers (their requests bypass interception), WebRTC and WebTransport (not HTTP). Below all of that, Chromium's
only route to the network is crawlrag's `EgressProxy` on loopback (no bypass list, loopback included), which
applies the same policy to whatever still leaves the browser: speculative preconnects, tunnels, anything an
engine path opens outside interception. See docs/security.md for what remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import platformdirs
from crawl4ai import BrowserConfig, CacheMode, CrawlerRunConfig
from crawl4ai.async_crawler_strategy import AsyncPlaywrightCrawlerStrategy
from crawl4ai.async_logger import AsyncLoggerBase

from crawlrag.config import Settings
from crawlrag.crawl.egress_proxy import DROPPED_RESPONSE_HEADERS, FORWARDED_REQUEST_HEADERS, EgressProxy
from crawlrag.crawl.guard import NetworkPolicy
from crawlrag.crawl.http import FetchError, HttpClient
from crawlrag.crawl.navigation import RenderScope, may_navigate

log = logging.getLogger(__name__)

_SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",  # QUIC is UDP, which an HTTP proxy does not carry
    "--dns-prefetch-disable",  # no lookups of names the guard never saw
    "--proxy-bypass-list=<-loopback>",  # without it loopback destinations would skip the egress proxy
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Chromium never needs DNS (the proxy resolves, through the guard): a lookup it tries anyway finds nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--remote-debugging-port=0",
)
_PLAYWRIGHT_EXECUTABLES = (
    "chromium-*/chrome-linux*/chrome",
    "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    "chromium-*/chrome-win*/chrome.exe",
)
_STARTUP_SECONDS = 20.0
_MAX_PARALLEL_PAGES = 4
_MAX_RESTARTS = 2  # after a crash; a browser that keeps dying is left dead and its pages fail
_ANY_URL = re.compile(r".*")
# Runs before any script of every document: removes the APIs whose network traffic Playwright cannot route.
_DISABLE_UNROUTABLE_APIS = """
for (const [owner, name] of [[Navigator.prototype, "serviceWorker"], [globalThis, "RTCPeerConnection"],
    [globalThis, "webkitRTCPeerConnection"], [globalThis, "RTCDataChannel"], [globalThis, "WebTransport"]]) {
  try { delete owner[name]; } catch (error) {}
}
"""


class BrowserUnavailableError(RuntimeError):
    """No Chromium could be started; the message lists what was tried."""


@dataclass(frozen=True, slots=True)
class RenderedPage:
    url: str
    status_code: int | None
    html: str


class _LoggingBridge(AsyncLoggerBase):
    """crawl4ai's logger interface routed to `logging` at DEBUG (its AsyncLogger prints and writes files)."""

    def __init__(self) -> None:
        self._log = logging.getLogger("crawlrag.crawl.crawl4ai")

    def _emit(self, message: str, tag: str, params: dict[str, Any] | None = None) -> None:
        if self._log.isEnabledFor(logging.DEBUG):
            with contextlib.suppress(Exception):
                message = message.format(**params) if params else message
            self._log.debug("[%s] %s", tag, message)

    def debug(self, message: str, tag: str = "DEBUG", **kwargs: Any) -> None:
        self._emit(message, tag, kwargs.get("params"))

    def info(self, message: str, tag: str = "INFO", **kwargs: Any) -> None:
        self._emit(message, tag, kwargs.get("params"))

    def success(self, message: str, tag: str = "SUCCESS", **kwargs: Any) -> None:
        self._emit(message, tag, kwargs.get("params"))

    def warning(self, message: str, tag: str = "WARNING", **kwargs: Any) -> None:
        self._emit(message, tag, kwargs.get("params"))

    def error(self, message: str, tag: str = "ERROR", **kwargs: Any) -> None:
        self._emit(message, tag, kwargs.get("params"))

    def url_status(self, url: str, success: bool, timing: float, tag: str = "FETCH", url_length: int = 100) -> None:
        self._emit(f"{url} success={success} {timing:.2f}s", tag)

    def error_status(self, url: str, error: str, tag: str = "ERROR", url_length: int = 100) -> None:
        self._emit(f"{url} {error}", tag)


class BrowserRenderer:
    """Renders pages in Chromium. Start is lazy and happens once; `close()` must be awaited.

    `http` is the client the browser's requests go through; without one the renderer makes its own (with a
    `NetworkPolicy` from `settings`) when the browser first asks, and closes it on `close()`.
    """

    def __init__(self, settings: Settings, http: HttpClient | None = None) -> None:
        self._settings = settings
        self._http = http
        self._owned_http: HttpClient | None = None
        self._lock = anyio.Lock()
        self._pages = anyio.Semaphore(min(_MAX_PARALLEL_PAGES, settings.max_concurrent))
        self._process: subprocess.Popen[bytes] | None = None
        self._proxy: EgressProxy | None = None
        self._proxy_task: asyncio.Task[None] | None = None
        self._profile: Path | None = None
        self._strategy: AsyncPlaywrightCrawlerStrategy | None = None
        self._finalizer: weakref.finalize[Any, BrowserRenderer] | None = None
        self._failure: str | None = None
        self._restarts = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def render(self, url: str) -> RenderedPage:
        """Load `url` and return the DOM after its scripts ran.

        Raises `BrowserUnavailableError`, and `NavigatedAwayError` when the page tried to load another document.
        """
        strategy = await self._ensure_started()
        scope = RenderScope()
        config = CrawlerRunConfig(
            cache_mode=CacheMode.BYPASS,
            wait_until="load",
            page_timeout=int(self._settings.request_timeout_seconds * 1000),
            delay_before_return_html=0.1,
            verbose=False,
            shared_data=scope.shared_data(),
        )
        async with self._pages:
            try:
                response = await strategy.crawl(url, config=config)
            except Exception:
                scope.raise_if_navigated_away()  # the refused navigation is why the crawl failed
                raise
        scope.raise_if_navigated_away()
        return RenderedPage(url=response.redirected_url or url, status_code=response.status_code, html=response.html)

    async def close(self) -> None:
        strategy, self._strategy = self._strategy, None
        if strategy is not None:
            try:
                with anyio.fail_after(10):
                    await strategy.close()
            except Exception as exc:  # the process is killed below either way
                log.debug("closing the crawl4ai browser strategy failed: %s", exc)
        if self._finalizer is not None:
            with anyio.CancelScope(shield=True):  # the browser process is killed even when closing is cancelled
                await anyio.to_thread.run_sync(self._finalizer)
            self._finalizer = None
        self._process = None
        self._profile = None
        proxy_task, self._proxy_task = self._proxy_task, None
        if proxy_task is not None:
            proxy_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await proxy_task
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            await proxy.aclose()
        owned, self._owned_http = self._owned_http, None
        if owned is not None:
            await owned.__aexit__(None, None, None)

    async def _ensure_started(self) -> AsyncPlaywrightCrawlerStrategy:
        async with self._lock:
            if self._strategy is not None and not self.running and self._restarts < _MAX_RESTARTS:
                self._restarts += 1
                log.warning("the headless browser exited unexpectedly; starting it again")
                await self.close()
            if self._strategy is not None:
                return self._strategy
            if self._failure is not None:
                raise BrowserUnavailableError(self._failure)
            try:
                self._strategy = await self._start()
            except BrowserUnavailableError as exc:
                self._failure = str(exc)
                log.warning("JavaScript pages cannot be rendered: %s", exc)
                raise
            return self._strategy

    async def _start(self) -> AsyncPlaywrightCrawlerStrategy:
        tried: list[str] = []
        for executable in _candidate_executables(self._settings):
            try:
                cdp_url = await self._launch(executable)
            except BrowserUnavailableError as exc:
                tried.append(f"{executable}: {exc}")
                continue
            browser_config = BrowserConfig(
                cdp_url=cdp_url,
                create_isolated_context=True,  # without it concurrent pages navigate each other away
                cdp_cleanup_on_close=True,  # else close() leaves the Playwright driver running
                cdp_close_delay=0,
                user_agent=self._settings.user_agent,
                verbose=False,
            )
            strategy = AsyncPlaywrightCrawlerStrategy(browser_config=browser_config, logger=_LoggingBridge())
            strategy.set_hook("on_page_context_created", self._guard_context)
            try:
                await strategy.start()
            except Exception as exc:
                await self.close()
                tried.append(f"{executable}: connecting over CDP failed: {exc}")
                continue
            log.info("started headless browser %s (pid %s)", executable, self.pid)
            return strategy
        detail = "; ".join(tried) if tried else "no Chromium found"
        raise BrowserUnavailableError(
            f"{detail}. Install Chromium (e.g. `apt install chromium` or `playwright install chromium`) "
            "or set CHROMIUM_PATH"
        )

    async def _guard_context(self, page: Any, context: Any = None, config: Any = None, **kwargs: Any) -> Any:
        """Route every request of the context through `_fetch_for_browser` (once per context; crawl4ai reuses them)."""
        RenderScope.attach(page, config)
        if context is not None and not getattr(context, "_crawlrag_guarded", False):
            await context.add_init_script(_DISABLE_UNROUTABLE_APIS)
            await context.route("**/*", self._fetch_for_browser)
            await context.route_web_socket(_ANY_URL, _refuse_websocket)
            context._crawlrag_guarded = True
        return page

    async def _fetch_for_browser(self, route: Any) -> None:
        request = route.request
        try:
            if request.is_navigation_request() and not may_navigate(request):
                await route.abort("blockedbyclient")
                return
            if request.method != "GET":
                # Rendering reads pages; it has no business sending forms or API writes anywhere.
                await route.abort("blockedbyclient")
                return
            headers = await request.all_headers()
            forwarded = {name: headers[name] for name in FORWARDED_REQUEST_HEADERS if name in headers}
            try:
                response = await (await self._client()).get(request.url, headers=forwarded)
            except FetchError as exc:
                log.debug("browser request for %s refused or failed: %s", request.url, exc)
                await route.abort("blockedbyclient")
                return
            kept = {k: v for k, v in response.headers.items() if k not in DROPPED_RESPONSE_HEADERS}
            await route.fulfill(status=response.status, headers=kept, body=response.body)
        except Exception as exc:  # the page closed or navigated away meanwhile: nothing is waiting for the answer
            log.debug("could not answer the browser's request for %s: %s", request.url, exc)

    async def _client(self) -> HttpClient:
        if self._http is not None:
            return self._http
        if self._owned_http is None:
            owned = HttpClient(self._settings, NetworkPolicy(self._settings))
            await owned.__aenter__()
            self._owned_http = owned
        return self._owned_http

    async def _egress_proxy(self) -> str:
        """The address of the proxy Chromium's traffic goes through, started on first use."""
        if self._proxy is None:
            client = await self._client()
            proxy = EgressProxy(client.policy, client, timeout=self._settings.request_timeout_seconds)
            await proxy.listen()
            # The proxy lives as long as the browser, which starts in whichever fetch needs it first and stops in
            # close(): no anyio task group spans that, so it is a plain task of the (asyncio) loop Playwright needs.
            self._proxy, self._proxy_task = proxy, asyncio.create_task(proxy.serve())
        return self._proxy.address

    async def _launch(self, executable: str) -> str:
        proxy_flag = f"--proxy-server=http://{await self._egress_proxy()}"
        profile = Path(tempfile.mkdtemp(prefix="crawlrag-chromium-"))
        stderr_path = profile / "chromium-stderr.log"
        try:
            with stderr_path.open("wb") as stderr:
                # stdout must never reach ours: on the stdio transport it is the MCP protocol stream.
                process = subprocess.Popen(
                    [executable, *_CHROMIUM_FLAGS, proxy_flag, f"--user-data-dir={profile / 'profile'}", "about:blank"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
        except OSError as exc:
            shutil.rmtree(profile, ignore_errors=True)
            raise BrowserUnavailableError(f"cannot be started ({exc.strerror or exc})") from None
        self._process, self._profile = process, profile
        self._finalizer = weakref.finalize(self, _terminate, process, profile)
        port_file = profile / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + _STARTUP_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                lines = port_file.read_text().splitlines()
                if lines and lines[0].strip().isdigit():
                    return f"http://127.0.0.1:{lines[0].strip()}"
            await anyio.sleep(0.05)
        tail = _tail(stderr_path)
        await self.close()
        status = "exited" if process.poll() is not None else f"did not start within {_STARTUP_SECONDS:g}s"
        raise BrowserUnavailableError(f"{status}{': ' + tail if tail else ''}")


async def _refuse_websocket(websocket: Any) -> None:
    """Never connect a page's WebSocket to a server: the private-network check cannot see inside them."""
    await websocket.close(code=1008, reason="WebSockets are disabled while crawling")


def _candidate_executables(settings: Settings) -> list[str]:
    if settings.chromium_path:
        return [settings.chromium_path]
    candidates = _playwright_chromiums()
    for name in _SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found and found not in candidates:
            candidates.append(found)
    return candidates


def _playwright_chromiums() -> list[str]:
    """Chromium builds installed by `playwright install chromium`, newest first.

    Found on disk instead of asking Playwright, which would start its Node driver (about a second) just to
    name a path. A changed cache layout only means the system Chromium is used instead.
    """
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or platformdirs.user_cache_dir(
        "ms-playwright", appauthor=False, opinion=False
    )
    found: list[Path] = []
    for pattern in _PLAYWRIGHT_EXECUTABLES:
        found.extend(Path(root).glob(pattern))
    found.sort(key=lambda path: _revision(path.relative_to(root).parts[0]), reverse=True)
    return [str(path) for path in found if os.access(path, os.X_OK)]


def _revision(directory: str) -> int:
    digits = directory.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def _terminate(process: subprocess.Popen[bytes], profile: Path) -> None:
    """Stop Chromium and every helper process it started, then delete the temporary profile."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    # Renderer and zygote processes can outlive the main process for a moment.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    shutil.rmtree(profile, ignore_errors=True)


def _tail(path: Path, limit: int = 300) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " ".join(text[-limit:].split())
