"""A protocol peer on 127.0.0.1: the subset of the OpenAI embeddings/chat and TEI/Cohere rerank APIs crawlrag uses.

Vectors are hashed bags of words, so texts sharing words are similar and search over them works. Failures are
scripted per path: `peer.fail("/v1/embeddings", "429", "timeout")` makes the next two requests fail that way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_DIMENSIONS = {"nomic-embed-text": 64, "other-embed": 32}
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def bag_of_words(text: str, dim: int) -> list[float]:
    vector = [0.0] * dim
    vector[0] = 0.05  # never all zero, even for a text without words
    for word in words(text):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
    return vector


@dataclass
class Peer:
    url: str = ""
    script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    stall_seconds: float = 1.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path: str, *kinds: str) -> None:
        with self.lock:
            self.script[path].extend(kinds)

    def next_failure(self, path: str) -> str | None:
        with self.lock:
            queue = self.script.get(path)
            return queue.popleft() if queue else None

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for seen, body, _ in self.requests if seen == path]

    def headers(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for seen, _, headers in self.requests if seen == path]


def _answer(peer: Peer, path: str, body: dict[str, Any], failure: str | None) -> tuple[int, Any]:
    if path.endswith("/embeddings"):
        dim = MODEL_DIMENSIONS.get(body.get("model", ""), 0)
        if not dim:
            return 404, {"error": {"message": f"model {body.get('model')!r} not found"}}
        if failure == "wrong_dim":
            dim = dim // 2
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [[0.0] * dim if failure == "zero" else bag_of_words(text, dim) for text in inputs]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return 200, {"object": "list", "data": data[::-1], "model": body["model"]}  # out of order on purpose
    if path.endswith("/chat/completions"):
        prompt = body["messages"][-1]["content"]
        chunk = prompt.split("<chunk>\n", 1)[-1].split("\n</chunk>", 1)[0] if "<chunk>" in prompt else prompt
        text = "LLM context: " + " ".join(words(chunk)[:5])
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    if path in ("/rerank", "/v1/rerank"):
        texts = body.get("texts") or body.get("documents") or []
        query = set(words(body["query"]))
        scores = [len(query & set(words(text))) / (1 + len(query)) for text in texts]
        if path == "/rerank":
            return 200, sorted(({"index": i, "score": s} for i, s in enumerate(scores)), key=lambda r: -r["score"])
        results = [{"index": i, "relevance_score": s} for i, s in enumerate(scores)]
        return 200, {"results": sorted(results, key=lambda r: -r["relevance_score"])[: body.get("top_n")]}
    return 404, {"error": "no such path"}


def _handler(peer: Peer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path
            with peer.lock:
                peer.requests.append((path, body, {k.lower(): v for k, v in self.headers.items()}))
            failure = peer.next_failure(path)
            if failure == "429":
                return self._send(429, b'{"error": "rate limited"}', {"Retry-After": "2"})
            if failure == "500":
                return self._send(500, b'{"error": "boom"}')
            if failure == "401":
                return self._send(401, b'{"error": "bad key"}')
            if failure == "malformed":
                return self._send(200, b'{"data": [tru')
            if failure == "timeout":
                time.sleep(peer.stall_seconds)
            status, answer = _answer(peer, path, body, failure)
            self._send(status, json.dumps(answer).encode())

    return Handler


@contextlib.contextmanager
def serve_peer() -> Iterator[Peer]:
    peer = Peer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(peer))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    peer.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
