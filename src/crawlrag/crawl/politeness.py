"""Politeness towards one host: a cap on concurrent fetches (MAX_CONCURRENT_PER_HOST) and robots.txt Crawl-delay."""

from __future__ import annotations

import anyio


class HostGate:
    """At most `limit` fetches to one host at once, their starts at least the host's Crawl-delay apart."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, anyio.Semaphore] = {}
        self._turns: dict[str, anyio.Lock] = {}
        self._next_start: dict[str, float] = {}

    def slot(self, host: str) -> anyio.Semaphore:
        return self._slots.setdefault(host, anyio.Semaphore(self._limit))

    async def wait_turn(self, host: str, delay: float) -> None:
        if delay <= 0:
            return
        async with self._turns.setdefault(host, anyio.Lock()):
            now = anyio.current_time()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + delay
            await anyio.sleep(start - now)
