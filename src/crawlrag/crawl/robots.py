"""robots.txt, fetched once per origin per crawl and applied with `urllib.robotparser`.

Status handling follows RFC 9309: a missing robots.txt (any 4xx) allows everything; a server error or an unreadable
file means "assume everything is disallowed" until a later crawl can read the file. A robots.txt that cannot be
fetched at all (connection refused, timed out, TLS or DNS failure) is not a verdict about the site: the host is
unreachable, and the page fails with that reason (`RobotsUnavailableError`) instead of being reported as disallowed.
`Crawl-delay` is read for our user agent and honoured up to MAX_CRAWL_DELAY_SECONDS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import anyio

from crawlrag.crawl.extract import decode_html
from crawlrag.crawl.http import FetchError, HostUnreachableError, HttpClient

log = logging.getLogger(__name__)

_MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB


class RobotsUnavailableError(Exception):
    """robots.txt could not be fetched because the host is unreachable; `str(exc)` is the network reason."""


@dataclass(frozen=True, slots=True)
class _Rules:
    parser: RobotFileParser | None  # None: `allow_all` decides
    allow_all: bool = True
    crawl_delay: float = 0.0
    unreachable: str | None = None  # the network failure that kept robots.txt from being read


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RobotsRules:
    """Answers "may this URL be fetched?" for one crawl; a new one per crawl picks up changed files."""

    def __init__(
        self, http: HttpClient, user_agent: str, *, enabled: bool = True, max_crawl_delay: float = 0.0
    ) -> None:
        self._http = http
        self._user_agent = user_agent
        self._enabled = enabled
        self._max_crawl_delay = max_crawl_delay
        self._rules: dict[str, _Rules] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        """False when robots.txt disallows `url`; raises RobotsUnavailableError when the host cannot be reached."""
        if not self._enabled:
            return True
        rules = await self._rules_for(origin_of(url))
        if rules.unreachable is not None:
            raise RobotsUnavailableError(rules.unreachable)
        if rules.parser is None:
            return rules.allow_all
        return rules.parser.can_fetch(self._user_agent, url)

    async def crawl_delay(self, url: str) -> float:
        """Seconds to leave between requests to the host of `url` (robots.txt Crawl-delay, capped)."""
        if not self._enabled:
            return 0.0
        return (await self._rules_for(origin_of(url))).crawl_delay

    async def _rules_for(self, origin: str) -> _Rules:
        lock = self._locks.setdefault(origin, anyio.Lock())
        async with lock:  # concurrent pages of one host wait for a single robots.txt download
            rules = self._rules.get(origin)
            if rules is None:
                rules = self._rules[origin] = await self._load(origin)
        return rules

    async def _load(self, origin: str) -> _Rules:
        robots_url = f"{origin}/robots.txt"
        try:
            response = await self._http.get(robots_url, max_bytes=_MAX_ROBOTS_BYTES)
        except HostUnreachableError as exc:
            log.warning("robots.txt at %s could not be fetched (%s)", robots_url, exc)
            return _Rules(None, allow_all=False, unreachable=str(exc))
        except FetchError as exc:  # the host answered, with something unusable (too large, undecodable): stay away
            log.warning("robots.txt at %s could not be read (%s); not crawling that site", robots_url, exc)
            return _Rules(None, allow_all=False)
        if response.status >= 500:
            log.warning("robots.txt at %s: HTTP %s; not crawling that site", robots_url, response.status)
            return _Rules(None, allow_all=False)
        if not 200 <= response.status < 300:
            return _Rules(None, allow_all=True)
        parser = RobotFileParser(robots_url)
        text = await anyio.to_thread.run_sync(decode_html, response.body, response.charset)
        parser.parse(text.splitlines())
        delay = parser.crawl_delay(self._user_agent)
        seconds = min(float(delay), self._max_crawl_delay) if delay is not None else 0.0
        if delay is not None and float(delay) > self._max_crawl_delay:
            log.info("%s asks for Crawl-delay %s; waiting MAX_CRAWL_DELAY_SECONDS=%g", origin, delay, seconds)
        return _Rules(parser, crawl_delay=seconds)
