"""Embeddings from any server that speaks the OpenAI embeddings API: OpenAI, Ollama, vLLM, LM Studio, TEI."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
from pydantic import SecretStr

from crawlrag.embeddings.base import EmbeddingError
from crawlrag.remote import RemoteError, RetryPolicy, auth_headers, post_json
from crawlrag.tokens import EstimatedTokenCounter, TokenCounter

log = logging.getLogger(__name__)

# Short and fixed, so the probe that detects the dimension costs next to nothing.
_PROBE_TEXT = "dimension probe"


class OpenAICompatibleEmbedder:
    """Blocking client of `POST {base_url}/embeddings`; `transport` replaces the network in tests."""

    def __init__(
        self,
        model_name: str,
        base_url: str,
        *,
        api_key: SecretStr | None = None,
        dimensions: int | None = None,
        batch_size: int = 64,
        concurrency: int = 4,
        timeout_seconds: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._model_name = model_name
        self._url = base_url.rstrip("/") + "/embeddings"
        self._requested_dimensions = dimensions
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._retry = retry or RetryPolicy()
        self._client = httpx.Client(
            headers=auth_headers(api_key),
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency),
        )
        self._lock = threading.Lock()
        self._dimension: int | None = None
        self._error: str | None = None
        self.requests = 0
        self.failures = 0

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.load()
        assert self._dimension is not None
        return self._dimension

    @property
    def max_input_tokens(self) -> int | None:
        return None  # the server's model and tokenizer are not known here

    def token_counter(self) -> TokenCounter:
        return EstimatedTokenCounter()

    def load(self) -> None:
        """Probe the server once: checks URL, key and model, and learns the dimension from the response."""
        if self._dimension is None:
            self._embed_batch([_PROBE_TEXT])

    def _payload(self, texts: Sequence[str]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self._model_name, "input": list(texts), "encoding_format": "float"}
        if self._requested_dimensions is not None:
            payload["dimensions"] = self._requested_dimensions  # text-embedding-3-* can shorten its vectors
        return payload

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.requests += 1
        try:
            body = post_json(self._client, self._url, self._payload(texts), self._retry)
            vectors = self._parse(body, len(texts))
        except (RemoteError, EmbeddingError) as exc:
            with self._lock:
                self.failures += 1
                self._error = f"embedding with {self._model_name!r} at {self._url} failed: {exc}"
            raise EmbeddingError(self._error) from exc
        self._error = None
        return vectors

    def _parse(self, body: Any, expected: int) -> np.ndarray:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else "no"
            raise EmbeddingError(f"expected {expected} embeddings in `data`, got {got}")
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
            array = np.array([item["embedding"] for item in ordered], dtype=np.float32)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"the response's embeddings are not lists of numbers: {exc}") from exc
        if array.ndim != 2 or array.shape[1] == 0:
            raise EmbeddingError(f"embeddings have inconsistent lengths (shape {array.shape})")
        self._check_dimension(array.shape[1])
        if not np.all(np.isfinite(array)):
            raise EmbeddingError("the server returned non-finite embedding values")
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        if np.any(norms < 1e-12):
            # Never store a zero vector: it matches nothing and hides that the chunk was never embedded.
            raise EmbeddingError("the server returned an all-zero embedding")
        # Ollama and some vLLM models do not normalise; search uses dot products of unit vectors.
        return np.asarray(array / norms, dtype=np.float32)

    def _check_dimension(self, dim: int) -> None:
        with self._lock:
            wanted = self._dimension or self._requested_dimensions
            if wanted is not None and dim != wanted:
                raise EmbeddingError(
                    f"the server returned {dim}-dimension embeddings, expected {wanted} "
                    "(EMBEDDING_DIMENSIONS or the first response)"
                )
            self._dimension = dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = [texts[i : i + self._batch_size] for i in range(0, len(texts), self._batch_size)]
        if len(batches) == 1 or self._concurrency == 1:
            return np.concatenate([self._embed_batch(batch) for batch in batches])
        # Batches go out concurrently (bounded); any failure after its retries fails the whole call.
        with ThreadPoolExecutor(min(self._concurrency, len(batches)), thread_name_prefix="crawlrag-embed") as pool:
            return np.concatenate(list(pool.map(self._embed_batch, batches)))

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed_batch([text])[0]

    def status(self) -> dict[str, Any]:
        return {
            "provider": "openai",
            "model": self._model_name,
            "url": self._url,
            "loaded": self._dimension is not None,
            "dimension": self._dimension,
            "requests": self.requests,
            "failures": self.failures,
            "error": self._error,
        }

    def close(self) -> None:
        self._client.close()
