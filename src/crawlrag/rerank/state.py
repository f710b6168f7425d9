"""The reranker's lifecycle states and a thread-safe machine that moves between them.

The loader thread moves the machine; request handlers and /health read it from other threads and event loops,
so every read and transition happens under one lock, and waiters on any event loop are woken thread-safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from enum import StrEnum


class RerankState(StrEnum):
    DISABLED = "disabled"  # USE_RERANKING=false, or closed
    NOT_STARTED = "not_started"  # enabled, start() not called yet
    LOADING = "loading"
    VALIDATING = "validating"
    WARMING = "warming"
    READY = "ready"  # the configured model is serving
    DEGRADED = "degraded"  # a fallback model is serving; `reason` says why the primary is not
    FAILED = "failed"  # nothing is serving; search works without reranking; `reason` says why


SERVING = frozenset({RerankState.READY, RerankState.DEGRADED})
SETTLED = SERVING | {RerankState.FAILED, RerankState.DISABLED}

_S = RerankState
_ALLOWED: dict[RerankState, frozenset[RerankState]] = {
    _S.NOT_STARTED: frozenset({_S.LOADING}),
    # LOADING → LOADING: the next model of the fallback chain.
    _S.LOADING: frozenset({_S.LOADING, _S.VALIDATING, _S.WARMING, _S.FAILED}),
    _S.VALIDATING: frozenset({_S.LOADING, _S.WARMING, _S.FAILED}),
    _S.WARMING: frozenset({_S.LOADING, _S.READY, _S.DEGRADED, _S.FAILED}),
    _S.READY: frozenset(),
    _S.DEGRADED: frozenset(),
    _S.FAILED: frozenset(),
    _S.DISABLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A bug: the loader tried a move the lifecycle does not allow."""


class StateMachine:
    def __init__(self, initial: RerankState, listener: Callable[[RerankState], None] | None = None) -> None:
        self._state = initial
        self._listener = listener
        self._reason: str | None = None
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.history: list[tuple[RerankState, float]] = [(initial, time.monotonic())]

    @property
    def state(self) -> RerankState:
        with self._lock:
            return self._state

    @property
    def reason(self) -> str | None:
        with self._lock:
            return self._reason

    def snapshot(self) -> tuple[RerankState, str | None]:
        with self._lock:
            return self._state, self._reason

    def transition(self, new: RerankState, reason: str | None = None) -> None:
        """Move to `new`; closing (→ DISABLED) is allowed from anywhere, all else follows `_ALLOWED`."""
        with self._lock:
            if new is not RerankState.DISABLED and new not in _ALLOWED[self._state]:
                raise IllegalTransition(f"{self._state} → {new}")
            self._state, self._reason = new, reason
            self.history.append((new, time.monotonic()))
            if new in SETTLED:
                self._settled.notify_all()
                waiters, self._waiters = self._waiters, []
            else:
                waiters = []
        if self._listener is not None:
            self._listener(new)
        for loop, future in waiters:
            # The loop may have been closed by a caller that gave up; nothing is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)

    def wait_settled_sync(self, timeout: float | None) -> RerankState:
        with self._settled:
            self._settled.wait_for(lambda: self._state in SETTLED, timeout)
            return self._state

    async def wait_settled(self, timeout: float) -> RerankState:
        """Wait without blocking the running loop until the state settles or `timeout` seconds pass."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._state in SETTLED:
                return self._state
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
        return self.state


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
