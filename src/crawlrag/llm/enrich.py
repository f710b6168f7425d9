"""LLM enrichment for the indexer: chunk contexts, code-example summaries and source summaries.

Every helper has a deterministic fallback. A failed or rate-limited call falls back and records why; after a few
failures in a row the LLM is paused for a while, so a crawl never fails, and never crawls slowly, because of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from crawlrag.config import Settings
from crawlrag.llm import prompts
from crawlrag.llm.client import ChatClient
from crawlrag.models import CodeExample, content_hash
from crawlrag.remote import RemoteError

log = logging.getLogger(__name__)

_CACHE_SIZE = 8192
_RECENT_REASONS = 20


class Enricher:
    def __init__(
        self,
        client: ChatClient,
        *,
        concurrency: int = 4,
        failure_threshold: int = 3,
        pause_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._concurrency = concurrency
        self._threshold = failure_threshold
        self._pause = pause_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._paused_until = 0.0
        self._last_error: str | None = None
        # Contexts of (page, chunk) pairs already asked for: re-indexing an unchanged chunk costs no call.
        self._contexts: OrderedDict[str, str] = OrderedDict()
        self.calls = 0
        self.fallbacks = 0
        self.reasons: deque[str] = deque(maxlen=_RECENT_REASONS)

    def _ask(self, task: str, messages: list[dict[str, str]], max_tokens: int) -> str | None:
        """The completion, or None after recording why the deterministic fallback is used instead."""
        with self._lock:
            if self._clock() < self._paused_until:
                self._fallback(task, f"LLM paused after repeated failures ({self._last_error})")
                return None
            self.calls += 1
        try:
            text = self.client.complete(messages, max_tokens=max_tokens)
        except RemoteError as exc:
            with self._lock:
                self._consecutive_failures += 1
                self._last_error = str(exc)
                if exc.rate_limited or self._consecutive_failures >= self._threshold:
                    self._paused_until = self._clock() + self._pause
                self._fallback(task, str(exc))
                return None
        with self._lock:
            self._consecutive_failures = 0
        return text

    def _fallback(self, task: str, reason: str) -> None:
        # Called with the lock held.
        self.fallbacks += 1
        self.reasons.append(f"{task}: {reason}")
        log.warning("LLM %s fell back to the deterministic version: %s", task, reason)

    def chunk_contexts(self, document: str, chunks: Sequence[str]) -> list[str | None]:
        """A situating context per chunk, None where the LLM could not give one."""
        page_key = content_hash(document)

        def one(chunk: str) -> str | None:
            key = page_key + content_hash(chunk)
            with self._lock:
                if key in self._contexts:
                    self._contexts.move_to_end(key)
                    return self._contexts[key]
            text = self._ask("chunk context", prompts.chunk_context(document, chunk), max_tokens=200)
            if text is None:
                return None
            text = text[: prompts.MAX_CONTEXT_CHARS]
            with self._lock:
                self._contexts[key] = text
                while len(self._contexts) > _CACHE_SIZE:
                    self._contexts.popitem(last=False)
            return text

        if len(chunks) <= 1 or self._concurrency == 1:
            return [one(chunk) for chunk in chunks]
        with ThreadPoolExecutor(min(self._concurrency, len(chunks)), thread_name_prefix="crawlrag-llm") as pool:
            return list(pool.map(one, chunks))

    def code_summary(self, example: CodeExample) -> str:
        """The LLM's summary of a code example, or the deterministic one it already carries."""
        messages = prompts.code_summary(example.code, example.context_before, example.context_after, example.language)
        text = self._ask("code summary", messages, max_tokens=150)
        return text[: prompts.MAX_SUMMARY_CHARS] if text else example.summary

    def source_summary(self, source_id: str, title: str, markdown: str, fallback: str) -> str:
        text = self._ask("source summary", prompts.source_summary(source_id, title, markdown), max_tokens=200)
        return text[: prompts.MAX_SUMMARY_CHARS] if text else fallback

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "model": self.client.model,
                "calls": self.calls,
                "fallbacks": self.fallbacks,
                "fallback_reasons": list(self.reasons),
                "paused": self._clock() < self._paused_until,
            }

    def close(self) -> None:
        self.client.close()


def build_enricher(settings: Settings, transport: httpx.BaseTransport | None = None) -> Enricher | None:
    """The enricher LLM_PROVIDER asks for, or None (LLM_PROVIDER=none: everything stays deterministic)."""
    if settings.llm_provider != "openai":
        return None
    client = ChatClient(
        settings.model_choice,
        settings.llm_url,
        api_key=settings.llm_key,
        timeout_seconds=settings.llm_timeout_seconds,
        concurrency=settings.llm_concurrency,
        transport=transport,
    )
    return Enricher(client, concurrency=settings.llm_concurrency)
