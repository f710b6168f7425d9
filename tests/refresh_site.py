"""A documentation site on 127.0.0.1 whose pages a test changes between a crawl and a refresh.

Pages answer with an ETag (the body's hash) and honour If-None-Match with 304, like a real static host; a
sitemap lists every page with its `<lastmod>`. `status` makes every request answer that status (a site that is
down); `failing` makes single paths answer 500; `delay` slows every page down.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import serve_handler


def doc(title: str, text: str, *links: str) -> str:
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{text}</p><ul>{anchors}</ul></main></body></html>"
    )


@dataclass
class ChangingSite:
    pages: dict[str, str]  # path -> HTML
    lastmod: dict[str, datetime] = field(default_factory=dict)  # path -> sitemap <lastmod>
    status: int | None = None
    failing: set[str] = field(default_factory=set)
    delay: float = 0.0
    base_url: str = ""
    requests: list[tuple[str, int]] = field(default_factory=list)  # (path, status answered)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def source_id(self) -> str:
        return self.base_url.removeprefix("http://")

    def requested(self, path: str) -> list[int]:
        with self._lock:
            return [status for requested, status in self.requests if requested == path]

    def sitemap(self) -> str:
        entries = "".join(
            f"<url><loc>{self.url(path)}</loc>"
            + (f"<lastmod>{self.lastmod[path].isoformat()}</lastmod>" if path in self.lastmod else "")
            + "</url>"
            for path in self.pages
        )
        return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.status is not None:
            return self.status, {"Content-Type": "text/plain"}, b"the site is down"
        if path in self.failing:
            return 500, {"Content-Type": "text/plain"}, b"internal error"
        if path == "/sitemap.xml":
            return 200, {"Content-Type": "application/xml"}, self.sitemap().encode()
        html = self.pages.get(path)
        if html is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        body = html.encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if headers.get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"Content-Type": "text/html; charset=utf-8", "ETag": etag}, body


@contextlib.contextmanager
def serve_changing(site: ChangingSite) -> Iterator[ChangingSite]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if site.delay:
                time.sleep(site.delay)
            status, headers, body = site.answer(path, {k.lower(): v for k, v in self.headers.items()})
            with site._lock:
                site.requests.append((path, status))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve_handler(Handler) as base_url:
        site.base_url = base_url
        yield site
