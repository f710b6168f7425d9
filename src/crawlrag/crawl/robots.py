"""robots.txt, fetched once per origin per crawl and applied with `urllib.robotparser`.

Status handling follows RFC 9309: a missing robots.txt (any 4xx) allows everything; a server error or an
unreachable server means "assume everything is disallowed" until a later crawl can read the file.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from crawlrag.crawl.extract import decode_html
from crawlrag.crawl.http import FetchError, HttpClient

log = logging.getLogger(__name__)

_MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB


# What one origin's robots.txt says: a parsed file, or a blanket "everything allowed/disallowed".
_Rules = RobotFileParser | bool


class RobotsRules:
    """Answers "may this URL be fetched?" for one crawl; a new one per crawl picks up changed files."""

    def __init__(self, http: HttpClient, user_agent: str, *, enabled: bool = True) -> None:
        self._http = http
        self._user_agent = user_agent
        self._enabled = enabled
        self._rules: dict[str, _Rules] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        if not self._enabled:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:  # concurrent pages of one host wait for a single robots.txt download
            rules = self._rules.get(origin)
            if rules is None:
                rules = await self._load(origin)
                self._rules[origin] = rules
        if isinstance(rules, bool):
            return rules
        return rules.can_fetch(self._user_agent, url)

    async def _load(self, origin: str) -> _Rules:
        robots_url = f"{origin}/robots.txt"
        try:
            response = await self._http.get(robots_url, max_bytes=_MAX_ROBOTS_BYTES)
        except FetchError as exc:
            log.warning("robots.txt at %s could not be read (%s); not crawling that site", robots_url, exc)
            return False
        if response.status >= 500:
            log.warning("robots.txt at %s: HTTP %s; not crawling that site", robots_url, response.status)
            return False
        if not 200 <= response.status < 300:
            return True
        parser = RobotFileParser(robots_url)
        parser.parse(decode_html(response.body, response.charset).splitlines())
        return parser
