"""JSON POSTs to provider APIs (embeddings, chat, rerank) with bounded retries that honour 429 / Retry-After."""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

log = logging.getLogger(__name__)

# Statuses that a later identical request may get past: rate limits, overload, gateway hiccups.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 60.0


class RemoteError(RuntimeError):
    """A provider request failed for good; `status` is the last HTTP status seen, if any."""

    def __init__(self, message: str, *, status: int | None = None, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.rate_limited = rate_limited


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    # Tests pass a recording no-op; production sleeps for real.
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        # Full jitter: concurrent workers that failed together do not come back together.
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


def auth_headers(key: SecretStr | None) -> dict[str, str]:
    secret = key.get_secret_value().strip() if key is not None else ""
    # Local servers (Ollama, vLLM without --api-key) need no key; sending none keeps them from rejecting it.
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _brief(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def post_json(client: httpx.Client, url: str, payload: dict[str, Any], policy: RetryPolicy) -> Any:
    """POST `payload`, retrying transport errors, retryable statuses and malformed JSON; return the parsed body."""
    last: RemoteError | None = None
    for attempt in range(policy.max_retries + 1):
        retry_after: float | None = None
        try:
            response = client.post(url, json=payload)
        except httpx.TimeoutException as exc:
            last = RemoteError(f"{url} timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            last = RemoteError(f"cannot reach {url}: {exc or type(exc).__name__}")
        else:
            status = response.status_code
            if status < 300:
                try:
                    return response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    # A proxy cut the body short or answered HTML: worth one more try, then a clear error.
                    last = RemoteError(f"{url} answered malformed JSON: {_brief(response.text)!r}", status=status)
            elif status in RETRY_STATUSES:
                retry_after = retry_after_seconds(response)
                last = RemoteError(
                    f"{url} answered HTTP {status}: {_brief(response.text)}", status=status, rate_limited=status == 429
                )
            else:
                raise RemoteError(f"{url} answered HTTP {status}: {_brief(response.text)}", status=status)
        if attempt < policy.max_retries:
            pause = policy.delay(attempt, retry_after)
            log.info("retrying %s in %.2fs: %s", url, pause, last)
            policy.sleep(pause)
    assert last is not None
    raise RemoteError(
        f"{last} (after {policy.max_retries + 1} attempts)", status=last.status, rate_limited=last.rate_limited
    )
