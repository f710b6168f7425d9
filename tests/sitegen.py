"""A small documentation site for crawl tests, written to a directory and served on 127.0.0.1.

    info = build_docs_site(tmp_path)
    with serve_site(info.root, hits=hits) as base_url:   # base_url like "http://127.0.0.1:41234"
        ...

The site has nested pages (depth 4) with a navigation bar, a sidebar and a footer around `<main>`, code blocks,
a page built by JavaScript, a 404 link, binary downloads, a text file, a redirect, a sitemap index pointing to
a plain and a gzipped sitemap, llms.txt / llms-full.txt, a robots.txt that disallows /private/, and a /slow/
section whose pages answer after a delay. The server sends ETag and Last-Modified and answers conditional
requests with 304; `hits` counts requests per path.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import io
import json
import threading
import time
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

NAV_MARKER = "NAVBAR-MARKER"
SIDEBAR_MARKER = "SIDEBAR-MARKER"
FOOTER_MARKER = "FOOTER-MARKER"
CODE_MARKER = "CODE-MARKER"
JS_MARKER = "JSRENDERED-MARKER"
SLOW_SECONDS = 3.0
# Replaced by the served base URL in text files, so sitemaps and llms.txt can hold absolute URLs.
BASE_URL_PLACEHOLDER = "__BASE_URL__"
_CONFIG_FILE = ".sitegen.json"  # redirects and slow pages, read by serve_site; dot files are never served
_TEXT_SUFFIXES = (".html", ".txt", ".md", ".xml")

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".zip": "application/zip",
    ".pdf": "application/pdf",
    ".css": "text/css",
}

# path -> (title, links in the page body). Every page also links to /, /guide/, /api/ (navigation bar and
# sidebar) and /about.html (footer).
_PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/": (
        "Example Docs",
        (
            "/guide/",
            "/api/",
            "/js-app.html",
            "/missing.html",
            "/downloads/archive.zip",
            "/downloads/manual.pdf",
            "/notes.txt",
            "/private/secret.html",
            "/old-page.html",
            "#top",
            "mailto:docs@example.com",
            "https://example.org/docs/",
        ),
    ),
    "/guide/": ("User guide", ("/guide/install.html", "/guide/usage.html")),
    "/api/": ("API reference", ("/api/client.html", "/api/server.html")),
    "/guide/install.html": ("Installation", ("/guide/advanced/tuning.html",)),
    "/guide/usage.html": ("Usage", ("/guide/install.html#step-2",)),
    "/api/client.html": ("Client API", ("/api/server.html", "../guide/usage.html")),
    "/api/server.html": ("Server API", ()),
    "/guide/advanced/tuning.html": ("Performance tuning", ("/guide/advanced/deep.html",)),
    "/guide/advanced/deep.html": ("Deep internals", ()),
    "/private/secret.html": ("Secret", ()),
}
_NAV = ("/", "/guide/", "/api/")
_FOOTER = ("/about.html", "https://example.com/")
_REDIRECTS = {"/old-page.html": "/guide/usage.html"}
_SLOW_PAGES = tuple(f"/slow/page-{index}.html" for index in range(6))


@dataclass(frozen=True)
class SiteInfo:
    """What `build_docs_site` wrote, so tests can state expectations without repeating the site's layout."""

    root: Path
    links: Mapping[str, tuple[str, ...]]  # same-site targets of each page (navigation included), no fragments
    redirects: Mapping[str, str]
    html_pages: frozenset[str]  # pages with content in plain HTML (robots-disallowed ones included)
    js_page: str = "/js-app.html"
    about_page: str = "/about.html"  # no <main>: the body fallback must drop its header, nav and footer
    text_file: str = "/notes.txt"
    binary_files: tuple[str, ...] = ("/downloads/archive.zip", "/downloads/manual.pdf")
    missing_page: str = "/missing.html"
    private_pages: tuple[str, ...] = ("/private/secret.html",)
    sitemap_index: str = "/sitemap_index.xml"
    sitemap_pages: tuple[str, ...] = ()  # same-site URLs listed in the two sitemaps
    sitemap_foreign_url: str = "https://other.example.net/page.html"
    llms_txt: str = "/llms.txt"
    llms_full_txt: str = "/llms-full.txt"
    llms_links: tuple[str, ...] = ()  # same-site targets listed in llms.txt
    slow_index: str = "/slow/"
    slow_pages: tuple[str, ...] = _SLOW_PAGES
    external_urls: tuple[str, ...] = ("https://example.org/docs/", "https://example.com/")
    markers: Mapping[str, str] = field(
        default_factory=lambda: {
            "nav": NAV_MARKER,
            "sidebar": SIDEBAR_MARKER,
            "footer": FOOTER_MARKER,
            "code": CODE_MARKER,
            "js": JS_MARKER,
        }
    )

    def depths(self) -> dict[str, int]:
        """Shortest link distance from "/" of every reachable path (redirects resolved)."""
        depths = {"/": 0}
        queue = deque(["/"])
        while queue:
            path = queue.popleft()
            for target in self.links.get(path, ()):
                target = self.redirects.get(target, target)
                if target not in depths:
                    depths[target] = depths[path] + 1
                    queue.append(target)
        return depths

    def within_depth(self, max_depth: int) -> set[str]:
        return {path for path, depth in self.depths().items() if depth <= max_depth}


def build_docs_site(directory: Path) -> SiteInfo:
    """Write the site into `directory` (created if needed) and describe it."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    links: dict[str, tuple[str, ...]] = {}
    for path, (title, body_links) in _PAGES.items():
        _write(root, path, _page(path, title, body_links))
        links[path] = _same_site_targets(path, (*_NAV, *body_links, *_FOOTER))
    _write(root, "/about.html", _about_page())
    links["/about.html"] = _same_site_targets("/about.html", (*_NAV, *_FOOTER))
    _write(root, "/js-app.html", _JS_PAGE)
    _write(root, "/notes.txt", "Release notes\n\nVersion 2.0 makes the client faster. See /guide/ for details.\n")
    _write(root, "/downloads/archive.zip", _zip_bytes())
    _write(root, "/downloads/manual.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer <<>>\n%%EOF\n")
    _write(root, "/static/style.css", "body { font-family: sans-serif; }\n")
    _write(root, "/robots.txt", "User-agent: *\nDisallow: /private/\n\nSitemap: /sitemap_index.xml\n")
    guide_urls = ("/guide/", "/guide/install.html", "/guide/advanced/deep.html", "/private/secret.html")
    api_urls = ("/api/client.html", "/api/server.html")
    _write(root, "/sitemap_index.xml", _sitemap_index(("/sitemaps/guide.xml", "/sitemaps/api.xml.gz")))
    _write(root, "/sitemaps/guide.xml", _urlset(guide_urls))
    _write(root, "/sitemaps/api.xml.gz", _urlset(api_urls, foreign=(SiteInfo.sitemap_foreign_url,)))
    _write(root, "/llms.txt", _LLMS_TXT)
    _write(root, "/llms-full.txt", "# Example Docs (full)\n\nEverything in one file. [Server](/api/server.html)\n")
    _write(root, "/slow/", _page("/slow/", "Slow section", _SLOW_PAGES))
    for slow in _SLOW_PAGES:
        _write(root, slow, _page(slow, f"Slow page {slow}", ()))
    config = {"redirects": _REDIRECTS, "slow_prefix": "/slow/page-", "slow_seconds": SLOW_SECONDS}
    (root / _CONFIG_FILE).write_text(json.dumps(config))
    return SiteInfo(
        root=root,
        links=links,
        redirects=dict(_REDIRECTS),
        html_pages=frozenset((*_PAGES, "/about.html")),
        sitemap_pages=(*guide_urls, *api_urls),
        llms_links=("/guide/", "/api/client.html", "/notes.txt"),
    )


@contextlib.contextmanager
def serve_site(
    root: Path,
    *,
    hits: Counter[str] | None = None,
    statuses: Counter[tuple[str, int]] | None = None,
    errors: Mapping[str, int] | None = None,
) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (random port) from a thread; yields the base URL without a trailing slash.

    `hits` counts requests per path, `statuses` counts (path, status) pairs, `errors` maps paths to an error
    status to answer with. A `.sitegen.json` written by `build_docs_site` adds redirects and slow pages.
    """
    root = Path(root).resolve()
    config_file = root / _CONFIG_FILE
    config: dict[str, Any] = json.loads(config_file.read_text()) if config_file.exists() else {}
    stopping = threading.Event()
    handler = _make_handler(
        root,
        hits=hits if hits is not None else Counter(),
        statuses=statuses if statuses is not None else Counter(),
        errors=dict(errors or {}),
        config=config,
        stopping=stopping,
    )
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stopping.set()  # wakes up slow responses
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` until it returns true or `timeout` seconds pass (for background processes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # slow responses must not delay shutdown

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up (cancelled crawls, the browser) are expected, not worth a traceback


def _make_handler(
    root: Path,
    *,
    hits: Counter[str],
    statuses: Counter[tuple[str, int]],
    errors: dict[str, int],
    config: dict[str, Any],
    stopping: threading.Event,
) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()
    redirects: dict[str, str] = dict(config.get("redirects", {}))
    slow_prefix = str(config.get("slow_prefix", "\0"))
    slow_seconds = float(config.get("slow_seconds", 0))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._respond(send_body=False)

        def do_GET(self) -> None:
            self._respond(send_body=True)

        def _respond(self, *, send_body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with lock:
                hits[path] += 1
            if path in errors:
                return self._send(path, errors[path], b"error\n", {"Content-Type": "text/plain"}, send_body)
            if path in redirects:
                return self._send(path, 301, b"", {"Location": redirects[path]}, send_body)
            if path.startswith(slow_prefix) and stopping.wait(slow_seconds):
                return self._send(path, 503, b"", {}, send_body)  # the server is shutting down
            file = self._file_for(path)
            if file is None:
                body = b"<html><body><h1>Not found</h1></body></html>"
                return self._send(path, 404, body, {"Content-Type": "text/html"}, send_body)
            content = self._content(file)
            mtime = int(file.stat().st_mtime)
            etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
            headers = {
                "Content-Type": _CONTENT_TYPES.get(file.suffix, "application/octet-stream"),
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
            }
            conditional = (self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"))
            if _not_modified(*conditional, etag=etag, mtime=mtime):
                return self._send(path, 304, b"", headers, send_body)
            return self._send(path, 200, content, headers, send_body)

        def _content(self, file: Path) -> bytes:
            content = file.read_bytes()
            base = f"http://127.0.0.1:{cast(ThreadingHTTPServer, self.server).server_port}".encode()
            placeholder = BASE_URL_PLACEHOLDER.encode()
            if file.name.endswith(".xml.gz"):
                return gzip.compress(gzip.decompress(content).replace(placeholder, base), mtime=0)
            if file.suffix in _TEXT_SUFFIXES:
                return content.replace(placeholder, base)
            return content

        def _file_for(self, path: str) -> Path | None:
            if any(part.startswith(".") for part in path.split("/")):
                return None
            candidate = (root / path.lstrip("/")).resolve()
            if candidate.is_dir():
                candidate = candidate / "index.html"
            if not candidate.is_file() or not candidate.is_relative_to(root):
                return None
            return candidate

        def _send(self, path: str, status: int, body: bytes, headers: dict[str, str], send_body: bool) -> None:
            with lock:
                statuses[(path, status)] += 1
            with contextlib.suppress(OSError):  # the client may have hung up (cancelled crawls)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body and status != 304:
                    self.wfile.write(body)

    return Handler


def _not_modified(if_none_match: str | None, if_modified_since: str | None, *, etag: str, mtime: int) -> bool:
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if if_modified_since is not None:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return mtime <= since
    return False


def _same_site_targets(page: str, targets: tuple[str, ...]) -> tuple[str, ...]:
    resolved: list[str] = []
    for target in targets:
        if target.startswith(("#", "mailto:", "http://", "https://")):
            continue
        if not target.startswith("/"):
            base = page if page.endswith("/") else page.rsplit("/", 1)[0] + "/"
            target = _resolve(base + target)
        target = target.split("#", 1)[0]
        if target not in resolved:
            resolved.append(target)
    return tuple(resolved)


def _resolve(path: str) -> str:
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(parts) > 1:
                parts.pop()
        elif segment != ".":
            parts.append(segment)
    return "/".join(parts)


def _write(root: Path, path: str, content: str | bytes) -> None:
    target = root / path.lstrip("/")
    if path.endswith("/"):
        target = target / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    if target.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    target.write_bytes(data)


def _chrome_top() -> str:
    nav = " ".join(f'<a href="{href}">{href.strip("/") or "Home"}</a>' for href in _NAV)
    sidebar = "".join(f'<li><a href="{href}">{href}</a></li>' for href in ("/guide/", "/api/"))
    return (
        f'<header class="site-header"><nav class="navbar">{nav} <span>{NAV_MARKER}</span></nav></header>\n'
        f'<div class="layout"><aside class="sidebar"><ul>{sidebar}</ul><p>{SIDEBAR_MARKER}</p></aside>\n'
    )


def _chrome_bottom() -> str:
    links = " ".join(f'<a href="{href}">{href}</a>' for href in _FOOTER)
    return f"</div>\n<footer><p>{FOOTER_MARKER} © Example Project</p>{links}</footer>\n"


def _page(path: str, title: str, body_links: tuple[str, ...]) -> str:
    slug = path.strip("/").replace("/", "_").replace(".", "_").replace("-", "_") or "home"
    items = "\n".join(f'<li><a href="{href}">Link to {href}</a></li>' for href in body_links)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — Example Docs</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body>
{_chrome_top()}<main>
<h1 id="top">{title}<a class="headerlink" href="#top">¶</a></h1>
<p>This page explains {title.lower()} of the example project in enough words to be indexed. Page {path}.</p>
<pre><code class="language-python">def example_{slug}():
    return "{CODE_MARKER}"
</code></pre>
<ul>
{items}
</ul>
</main>
{_chrome_bottom()}</body></html>
"""


def _about_page() -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>About — Example Docs</title></head>
<body>
{_chrome_top()}<div class="content">
<h1>About</h1>
<p>The example project is maintained by volunteers who like well-structured documentation.</p>
</div>
{_chrome_bottom()}</body></html>
"""


_JS_PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>JS App — Example Docs</title></head>
<body><div id="app"></div>
<script>
document.getElementById("app").innerHTML =
  "<main><h1>Rendered by JavaScript</h1><p>{JS_MARKER}: this text only exists after the scripts ran.</p></main>";
</script>
</body></html>
"""

_LLMS_TXT = f"""# Example Docs

> Documentation of the example project, for language models.

## Docs

- [User guide]({BASE_URL_PLACEHOLDER}/guide/): start here
- [Client API](api/client.html): the client classes
- [Release notes](/notes.txt)

## Elsewhere

- [Example](https://example.com/elsewhere)
"""


def _sitemap_index(children: tuple[str, ...]) -> str:
    entries = "".join(f"<sitemap><loc>{BASE_URL_PLACEHOLDER}{child}</loc></sitemap>" for child in children)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>\n'
    )


def _urlset(paths: tuple[str, ...], foreign: tuple[str, ...] = ()) -> str:
    urls = (*(BASE_URL_PLACEHOLDER + path for path in paths), *foreign)
    entries = "".join(f"<url><loc>{url}</loc><lastmod>2024-01-01</lastmod></url>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n'
    )


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "inside the archive\n")
    return buffer.getvalue()
