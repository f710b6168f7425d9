"""A blocking client of `POST {base_url}/chat/completions`, the subset of the OpenAI chat API crawlrag uses."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from crawlrag.remote import RemoteError, RetryPolicy, auth_headers, post_json


class ChatClient:
    """One short completion per call; `transport` replaces the network in tests."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: SecretStr | None = None,
        timeout_seconds: float = 60.0,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        # Few retries: every failure has a deterministic fallback, so waiting long for the LLM is never worth it.
        self._retry = retry or RetryPolicy(max_retries=2, backoff_seconds=1.0, max_backoff_seconds=5.0)
        self._client = httpx.Client(
            headers=auth_headers(api_key),
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency),
        )

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 200) -> str:
        """The assistant's text; raises RemoteError when the call fails or the answer is empty or malformed."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        body = post_json(self._client, self.url, payload, self._retry)
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise RemoteError(f"{self.url} answered without choices[0].message.content") from exc
        if not isinstance(text, str) or not text.strip():
            raise RemoteError(f"{self.url} answered an empty completion")
        return text.strip()

    def close(self) -> None:
        self._client.close()
