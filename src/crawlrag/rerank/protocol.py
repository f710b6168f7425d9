"""The interface search and the server use, whatever scores the passages (local cross-encoder, remote API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    @property
    def enabled(self) -> bool: ...

    def start(self) -> None:
        """Begin loading in the background and return at once; calling it again does nothing."""

    async def wait_ready(self, timeout: float) -> bool:
        """True once it serves (ready or degraded); False when it failed, is disabled or timed out."""

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score per passage, higher is more relevant; raises RerankUnavailable with the reason."""

    def status(self) -> dict[str, Any]:
        """The /health dict."""

    def close(self) -> None: ...
