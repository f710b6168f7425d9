"""Which hosts the crawler may contact: `ALLOWED_HOSTS` and the private-network check.

A crawl is started by whoever can call the MCP tool, so without this check a request could make the server
fetch `http://169.254.169.254/` or an admin page on the local network. Every request (including each redirect
hop) is checked before it is sent. The check resolves the host name itself; a DNS server that answers
differently a moment later (DNS rebinding) is not covered, a firewall is the tool for that.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from crawlrag.config import Settings
from crawlrag.crawl.urls import CrawlInputError

_DNS_CACHE_SECONDS = 60.0


class BlockedURLError(CrawlInputError):
    """The URL's host is not allowed by ALLOWED_HOSTS or resolves to a private network address."""


class NetworkPolicy:
    def __init__(self, settings: Settings) -> None:
        self._allow_private = settings.allow_private_network
        self._allowed_hosts = tuple(host.strip().lower() for host in settings.allowed_hosts if host.strip())
        self._resolved: dict[str, tuple[float, tuple[str, ...]]] = {}

    def host_allowed(self, url: str) -> bool:
        """The ALLOWED_HOSTS check alone (no DNS), for filtering discovered links cheaply."""
        if not self._allowed_hosts:
            return True
        host = (urlsplit(url).hostname or "").lower()
        return any(fnmatchcase(host, pattern) for pattern in self._allowed_hosts)

    async def check(self, url: str) -> None:
        """Raise `BlockedURLError` unless the crawler may send a request to `url`."""
        host = urlsplit(url).hostname or ""
        if not self.host_allowed(url):
            allowed = ", ".join(self._allowed_hosts)
            raise BlockedURLError(f"Refusing to crawl {url}: {host!r} is not in ALLOWED_HOSTS ({allowed})")
        if self._allow_private:
            return
        for address in await self._addresses(host):
            if not _is_public(address):
                raise BlockedURLError(
                    f"Refusing to crawl {url}: {host} resolves to the non-public address {address}; "
                    "set ALLOW_PRIVATE_NETWORK=true to crawl local or private-network sites"
                )

    async def _addresses(self, host: str) -> tuple[str, ...]:
        try:
            return (str(ipaddress.ip_address(host)),)
        except ValueError:
            pass
        cached = self._resolved.get(host)
        now = time.monotonic()
        if cached is not None and now - cached[0] < _DNS_CACHE_SECONDS:
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise BlockedURLError(f"Cannot resolve host {host!r}: {exc.strerror or exc}") from None
        addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        self._resolved[host] = (now, addresses)
        return addresses


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
