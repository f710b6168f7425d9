"""Helpers for the pipeline tests: a scriptable HTTP site on 127.0.0.1, stores and embedders that misbehave."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
from loopback import serve_handler

from crawlrag.embeddings import Embedder, EmbedderWrapper

Response = tuple[int, dict[str, str], bytes]
Route = Callable[[int], Response]  # the route is called with how many times its path was requested before


def html(title: str, body: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
        f"{body}</main></body></html>"
    ).encode()


def page(title: str, *links: str, words: str = "") -> Route:
    text = words or f"This page about {title.lower()} has enough words in it to be indexed by the crawler."
    anchors = "".join(f'<p><a href="{link}">link to {link}</a></p>' for link in links)
    body = html(title, f"<p>{text}</p>{anchors}")
    return lambda count: (200, {"Content-Type": "text/html; charset=utf-8"}, body)


def text(content: str, content_type: str = "text/plain; charset=utf-8") -> Route:
    body = content.encode()
    return lambda count: (200, {"Content-Type": content_type}, body)


@dataclass
class ScriptedSite:
    """Routes by path; records when each request arrived and the most requests in flight at once."""

    routes: dict[str, Route]
    delay: float = 0.0  # every page (not robots.txt) answers after this long
    base_url: str = ""
    requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def times(self, prefix: str = "/") -> list[float]:
        return [at for at, path, _ in self.requests if path.startswith(prefix) and path != "/robots.txt"]

    def count(self, path: str) -> int:
        return sum(1 for _, requested, _ in self.requests if requested == path)


@contextlib.contextmanager
def serve(site: ScriptedSite) -> Iterator[ScriptedSite]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with site._lock:
                before = site.count(path)
                site.requests.append((time.monotonic(), path, dict(self.headers.items())))
                site._in_flight += 1
                site.max_in_flight = max(site.max_in_flight, site._in_flight)
            try:
                route = site.routes.get(path)
                if site.delay and path != "/robots.txt":
                    time.sleep(site.delay)
                status, headers, body = route(before) if route else (404, {"Content-Type": "text/plain"}, b"no")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)
            finally:
                with site._lock:
                    site._in_flight -= 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve_handler(Handler) as base_url:
        site.base_url = base_url
        yield site


def many_pages_site(count: int, delay: float) -> ScriptedSite:
    """A home page linking to `count - 1` pages; every page answers after `delay` seconds."""
    links = [f"/p{i:03d}.html" for i in range(1, count)]
    routes: dict[str, Route] = {"/": page("Home", *links)}
    for link in links:
        words = f"Page {link} explains topic {link[2:5]} of the product, with enough words to be indexed well."
        routes[link] = page(f"Topic {link[2:5]}", words=words)
    return ScriptedSite(routes, delay=delay)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SlowEmbedder(EmbedderWrapper):
    """Wraps an embedder; every embed_documents call takes at least `seconds` (a slow model or server)."""

    def __init__(self, inner: Embedder, seconds: float) -> None:
        self._inner = inner
        self.seconds = seconds
        self.calls = 0

    @property
    def inner(self) -> Embedder:
        return self._inner

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        time.sleep(self.seconds)
        return self.inner.embed_documents(texts)


class SlowStore:
    """Every store call but searches takes `seconds` (a store locked by another process, a slow disk)."""

    # The reads a search makes: which versions exist, the hits, and when their pages were crawled.
    FAST = frozenset(
        {
            "keyword_search",
            "vector_search",
            "code_keyword_search",
            "code_vector_search",
            "source_versions",
            "page_dates",
        }
        | {"close"}
    )

    def __init__(self, inner: Any, seconds: float) -> None:
        self._inner = inner
        self.seconds = seconds

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name in self.FAST or not callable(attribute):
            return attribute

        def slow(*args: Any, **kwargs: Any) -> Any:
            time.sleep(self.seconds)
            return attribute(*args, **kwargs)

        return slow


def crawlrag_command() -> list[str]:
    script = Path(sys.executable).parent / "crawlrag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "crawlrag.cli"]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a `crawlrag` subprocess running this checkout's source on its own database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CRAWL_", "USE_", "MAX_"))}
    source = str(Path(__file__).resolve().parents[2] / "src")
    env.update(
        PYTHONPATH=source + os.pathsep + env.get("PYTHONPATH", ""),
        DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        ALLOW_PRIVATE_NETWORK="true",
        BROWSER="never",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env
