"""Which addresses the crawler may connect to: the private-network check, ALLOWED_HOSTS, and address pinning.

A crawl is started by whoever can call the MCP tool, and the pages it reads can be written by anyone, so without
this check a request could make the server fetch `http://169.254.169.254/` (cloud metadata) or an admin page on
the local network. Every request is checked: start URLs, each redirect hop, robots.txt, sitemaps, llms.txt
links and the browser's requests (its interception and its egress proxy). The rules, in order:

* only `http` and `https`, and no credentials in the URL;
* the host is resolved (IP literals in any spelling are read as addresses, see `addresses.host_ip`) and every
  address must be globally routable unicast: an allow-list built from the IANA special-purpose registries
  (`addresses.non_public_rule`), IPv6 forms that carry an IPv4 address (mapped, compatible, SIIT, NAT64, 6to4,
  Teredo) judged by that address;
* ALLOW_PRIVATE_NETWORK=true turns the address rule off; ALLOWED_HOSTS lists host names (globs) exempt from it.

Checking a name and then letting the HTTP library resolve it again would leave a window for DNS rebinding (a
public answer for the check, 127.0.0.1 for the connection). `addresses()` is therefore also what the crawler's
connections use: the HTTP client connects to an address this policy vetted, never to a fresh DNS answer
(see `http.PinnedBackend`). TLS still verifies the certificate against the host name.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from crawlrag.config import Settings
from crawlrag.crawl.addresses import AddressSyntaxError, IPAddress, host_ip, non_public_rule
from crawlrag.crawl.urls import CrawlInputError

# Resolves a host name to IP address strings; injectable so tests can point names at 127.0.0.1 without DNS.
Resolver = Callable[[str], Awaitable[Sequence[str]]]

DNS_CACHE_SECONDS = 60.0
_DNS_CACHE_ENTRIES = 1024
_ALLOWED_SCHEMES = ("http", "https")
_MAX_SHOWN_URL = 200


class BlockedURLError(CrawlInputError):
    """The URL may not be fetched; the message names the rule that refused it and the setting that would allow it."""


async def system_resolver(host: str) -> list[str]:
    """The operating system's resolver (getaddrinfo), run off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class NetworkPolicy:
    """One per crawler; its DNS cache keeps the answers of one host consistent for DNS_CACHE_SECONDS."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        dns_cache_seconds: float = DNS_CACHE_SECONDS,
    ) -> None:
        self._allow_private = settings.allow_private_network
        self._exempt_patterns = tuple(p for p in (_host_key(host) for host in settings.allowed_hosts) if p)
        self._resolver = resolver or system_resolver
        self._resolve_timeout = settings.request_timeout_seconds
        self._cache_seconds = dns_cache_seconds
        self._resolved: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()

    def exempt(self, host: str) -> bool:
        """True when `host` may resolve to non-public addresses (ALLOW_PRIVATE_NETWORK or ALLOWED_HOSTS)."""
        if self._allow_private:
            return True
        key = _canonical_host(host)
        return any(fnmatchcase(key, pattern) for pattern in self._exempt_patterns)

    async def check(self, url: str) -> None:
        """Raise `BlockedURLError` unless the crawler may send a request to `url`.

        Exempt hosts are not resolved here (a name that does not resolve fails when it is fetched); the
        addresses of the others are resolved and checked, and cached for the connection to use.
        """
        shown = _shown(url)
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise BlockedURLError(f"Refusing to fetch {shown}: invalid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in _ALLOWED_SCHEMES:
            raise BlockedURLError(
                f"Refusing to fetch {shown}: only http:// and https:// URLs are allowed, not {scheme or 'no'} scheme"
            )
        if "@" in parts.netloc:
            raise BlockedURLError(f"Refusing to fetch {shown}: URLs with credentials (user:password@) are not allowed")
        host = parts.hostname or ""
        if not host:
            raise BlockedURLError(f"Refusing to fetch {shown}: the URL has no host")
        try:
            host_ip(host)
        except AddressSyntaxError as exc:
            raise BlockedURLError(f"Refusing to fetch {shown}: {exc}") from None
        if not self.exempt(host):
            await self.addresses(host, url=shown)

    async def addresses(self, host: str, *, url: str | None = None) -> tuple[str, ...]:
        """The addresses of `host` that a connection may use; raise `BlockedURLError` if any of them is refused.

        One non-public address refuses the host: a connection may be made to any of them.
        """
        what = url or host
        try:
            literal = host_ip(host)
        except AddressSyntaxError as exc:
            raise BlockedURLError(f"Refusing to fetch {what}: {exc}") from None
        found = (str(literal),) if literal is not None else await self._resolve(_canonical_host(host), what)
        if self.exempt(host):
            return found
        for address in found:
            rule = non_public_rule(_as_ip(address))
            if rule is not None:
                name = _canonical_host(host)
                raise BlockedURLError(
                    f"Refusing to fetch {what}: {name} resolves to the non-public address {address} ({rule}). "
                    f"Set ALLOW_PRIVATE_NETWORK=true to crawl local or private-network sites, "
                    f"or add {name} to ALLOWED_HOSTS"
                )
        return found

    async def _resolve(self, host: str, what: str) -> tuple[str, ...]:
        now = time.monotonic()
        cached = self._resolved.get(host)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            async with asyncio.timeout(self._resolve_timeout):
                answer = await self._resolver(host)
        except TimeoutError:
            raise BlockedURLError(f"Cannot fetch {what}: resolving {host!r} timed out") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise BlockedURLError(f"Cannot fetch {what}: cannot resolve host {host!r} ({reason})") from None
        # Zone ids (fe80::1%eth0) are dropped: such addresses are link-local and refused, or exempt and usable.
        addresses = tuple(dict.fromkeys(address.split("%", 1)[0] for address in answer))
        if not addresses:
            raise BlockedURLError(f"Cannot fetch {what}: host {host!r} resolves to no address")
        self._resolved[host] = (now, addresses)
        self._resolved.move_to_end(host)
        while len(self._resolved) > _DNS_CACHE_ENTRIES:
            self._resolved.popitem(last=False)
        return addresses


def _canonical_host(host: str) -> str:
    """Lower-case, without brackets or a trailing dot; IP literals in their standard spelling."""
    key = host.strip().lower().strip("[]").rstrip(".")
    try:
        literal = host_ip(key)
    except AddressSyntaxError:
        return key
    return str(literal) if literal is not None else key


def _host_key(pattern: str) -> str:
    """An ALLOWED_HOSTS entry in the form `_canonical_host` gives hosts (globs are kept as they are)."""
    pattern = pattern.strip().lower()
    return pattern if any(char in pattern for char in "*?[") and ":" not in pattern else _canonical_host(pattern)


def _as_ip(address: str) -> IPAddress:
    try:
        ip = host_ip(address)
    except AddressSyntaxError:
        ip = None
    if ip is None:
        raise BlockedURLError(f"the resolver returned {address!r}, which is not an IP address")
    return ip


def _shown(url: str) -> str:
    """The URL for an error message: credentials masked, cut to a readable length."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:_MAX_SHOWN_URL]
    if "@" in parts.netloc:
        url = url.replace(parts.netloc, "***@" + parts.netloc.rsplit("@", 1)[1], 1)
    return url if len(url) <= _MAX_SHOWN_URL else url[:_MAX_SHOWN_URL] + "..."
