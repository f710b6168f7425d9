"""IP addresses in URLs: reading a host as an address the way browsers and the C resolver do, and deciding
whether an address is a globally routable unicast destination (naming the rule when it is not).

`http://2130706433/`, `http://0x7f.1/` and `http://0177.0.0.1/` all reach 127.0.0.1: `inet_aton` (and so
`getaddrinfo`) and the WHATWG URL standard read decimal, hex and octal parts and short forms. A check that treats
those hosts as names would ask DNS about them while the connection goes to loopback, so both the URL normaliser
and the network guard read them here, the same way.

The address rule is an allow-list built from the IANA special-purpose registries: a block that is not listed
here and not under 2000::/3 is refused too, so a range the registries add later (as 5f00::/16 and 3fff::/20
were in 2024) is refused until it is looked at, never allowed by default. IPv6 forms that deliver to an IPv4
address (mapped, compatible, SIIT, NAT64, 6to4, Teredo) are judged by that IPv4 address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HEX_PART = re.compile(r"^0[xX][0-9a-fA-F]*$")


@dataclass(frozen=True, slots=True)
class SpecialBlock:
    """One entry of an IANA special-purpose address registry; `rule` is what a refusal names."""

    network: IPNetwork
    rule: str


def _blocks(*entries: tuple[str, str]) -> tuple[SpecialBlock, ...]:
    """The entries, most specific first, so the first block that holds an address is the one that names it."""
    blocks = [SpecialBlock(ipaddress.ip_network(network), rule) for network, rule in entries]
    return tuple(sorted(blocks, key=lambda block: block.network.prefixlen, reverse=True))


_METADATA = "link-local (this range holds cloud metadata services such as 169.254.169.254)"

# The IANA IPv4 Special-Purpose Address Registry (iana-ipv4-special-registry, 2025), every entry. All are refused,
# the few marked "globally reachable" too: those are anycast service addresses (PCP, TURN, AS112, AMT) answered
# by whichever device is nearest, often one on the local network, and never a documentation site.
IPV4_SPECIAL_PURPOSE = _blocks(
    ("0.0.0.0/8", "unspecified"),  # "this network" (RFC 791); 0.0.0.0/32 "this host" is inside it
    ("10.0.0.0/8", "private"),  # RFC 1918
    ("100.64.0.0/10", "carrier-grade NAT (shared address space)"),  # RFC 6598
    ("127.0.0.0/8", "loopback"),  # RFC 1122
    ("169.254.0.0/16", _METADATA),  # RFC 3927
    ("172.16.0.0/12", "private"),  # RFC 1918
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.0.0/29", "IPv4 service continuity prefix (RFC 7335)"),
    ("192.0.0.8/32", "IPv4 dummy address (RFC 7600)"),
    ("192.0.0.9/32", "port control protocol anycast (RFC 7723)"),
    ("192.0.0.10/32", "TURN anycast (RFC 8155)"),
    ("192.0.0.170/32", "NAT64/DNS64 discovery (RFC 8880)"),
    ("192.0.0.171/32", "NAT64/DNS64 discovery (RFC 8880)"),
    ("192.0.2.0/24", "documentation (TEST-NET-1, RFC 5737)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private"),  # RFC 1918
    ("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2, RFC 5737)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3, RFC 5737)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "broadcast"),  # limited broadcast, RFC 919
)
# Not in the registry because not unicast at all (IPv4 Multicast Address Space registry).
_IPV4_MULTICAST = ipaddress.IPv4Network("224.0.0.0/4")

# The IANA IPv6 Special-Purpose Address Registry (iana-ipv6-special-registry, 2025), every entry except those
# that embed an IPv4 address (IPV6_EMBEDDED_IPV4 below judges those by that address), plus the blocks outside
# 2000::/3 that the registry leaves to the IPv6 Address Space registry, named for a clearer error.
IPV6_SPECIAL_PURPOSE = _blocks(
    ("::/128", "unspecified"),  # RFC 4291
    ("::1/128", "loopback"),  # RFC 4291
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001:1::1/128", "port control protocol anycast (RFC 7723)"),
    ("2001:1::2/128", "TURN anycast (RFC 8155)"),
    ("2001:1::3/128", "DNS-SD service registration protocol anycast (RFC 9665)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("2001:3::/32", "AMT (RFC 7450)"),
    ("2001:4:112::/48", "AS112-v6 (RFC 7535)"),
    ("2001:10::/28", "deprecated ORCHID (RFC 4843)"),
    ("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
    ("2001:30::/28", "drone remote ID protocol entity tags (RFC 9374)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing (SRv6) SIDs (RFC 9602)"),
    ("fc00::/7", "private"),  # unique local addresses, RFC 4193
    ("fe80::/10", "link-local"),  # RFC 4291
    ("fec0::/10", "deprecated site-local (RFC 3879)"),
    ("ff00::/8", "multicast"),  # RFC 4291
)
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL_UNICAST = "not global unicast (outside 2000::/3, RFC 4291)"
_UNSPECIFIED_OR_LOOPBACK = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))


def _low32(value: int) -> tuple[int, ...]:
    return (value & 0xFFFFFFFF,)


def _sixtofour(value: int) -> tuple[int, ...]:
    return ((value >> 80) & 0xFFFFFFFF,)


def _teredo(value: int) -> tuple[int, ...]:
    # The server's address, and the client's (stored inverted); traffic can be delivered towards either.
    return ((value >> 64) & 0xFFFFFFFF, ~value & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class EmbeddingForm:
    """An IPv6 block whose addresses carry an IPv4 address and deliver to it (kernel, translator or relay)."""

    network: ipaddress.IPv6Network
    form: str
    carried: Callable[[int], tuple[int, ...]]  # the IPv4 address(es), from the address as an integer
    refused_anyway: str | None = None  # the rule when even a public IPv4 inside may not be reached


IPV6_EMBEDDED_IPV4 = (
    EmbeddingForm(ipaddress.IPv6Network("::ffff:0:0/96"), "IPv4-mapped", _low32),  # RFC 4291
    EmbeddingForm(ipaddress.IPv6Network("::ffff:0:0:0/96"), "IPv4-translated (SIIT)", _low32),  # RFC 2765
    EmbeddingForm(ipaddress.IPv6Network("64:ff9b::/96"), "NAT64", _low32),  # RFC 6052
    # RFC 8215 lets a network put the IPv4 address at any RFC 6052 position (prefix /48 to /96) inside this
    # block, so which IPv4 host it reaches cannot be told; the /96 reading names the rule when it is non-public.
    EmbeddingForm(
        ipaddress.IPv6Network("64:ff9b:1::/48"),
        "local-use NAT64",
        _low32,
        "local-use NAT64 (RFC 8215): not globally reachable, and the IPv4 host it reaches depends on the network",
    ),
    EmbeddingForm(ipaddress.IPv6Network("2002::/16"), "6to4", _sixtofour),  # RFC 3056
    EmbeddingForm(ipaddress.IPv6Network("2001::/32"), "Teredo", _teredo),  # RFC 4380
    # Checked after ::/128 and ::1/128, which lie inside it.
    EmbeddingForm(ipaddress.IPv6Network("::/96"), "IPv4-compatible", _low32),  # RFC 4291, deprecated
)


class AddressSyntaxError(ValueError):
    """A host that ends in a number but is not a valid IPv4 address (`1.2.3.999`, `foo.123`)."""


def host_ip(host: str) -> IPAddress | None:
    """The address `host` (as `urlsplit(...).hostname` gives it) names literally, or None for a DNS name.

    IPv6 literals may keep their brackets; a zone (`%eth0`) is dropped. Raises `AddressSyntaxError` for a host
    that can only be meant as an IPv4 number but is not one, as browsers refuse such URLs too.
    """
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise AddressSyntaxError(f"invalid IPv6 address {host!r}") from None
    return _ipv4_number_host(host)


def _ipv4_number_host(host: str) -> ipaddress.IPv4Address | None:
    """The WHATWG URL standard's IPv4 parser: 1 to 4 parts, each decimal, 0x-hex or 0-prefixed octal."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    last = parts[-1]
    if not (last.isascii() and last.isdigit()) and not _HEX_PART.match(last):
        return None  # a name: its last label is not a number
    if len(parts) > 4:
        raise AddressSyntaxError(f"invalid IPv4 address {host!r}: more than four parts")
    numbers = [_ipv4_part(part, host) for part in parts]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise AddressSyntaxError(f"invalid IPv4 address {host!r}: a part is out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str, host: str) -> int:
    try:
        if _HEX_PART.match(part):
            return int(part[2:] or "0", 16)
        if not (part.isascii() and part.isdigit()):
            raise ValueError(part)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part)
    except ValueError:
        raise AddressSyntaxError(f"invalid IPv4 address {host!r}: {part!r} is not a number") from None


def embedded_ipv4(ip: IPAddress) -> tuple[EmbeddingForm, tuple[ipaddress.IPv4Address, ...]] | None:
    """The form of an IPv6 address that carries IPv4 and the IPv4 address(es) it is delivered to, or None."""
    if isinstance(ip, ipaddress.IPv4Address) or ip in _UNSPECIFIED_OR_LOOPBACK:
        return None
    for embedding in IPV6_EMBEDDED_IPV4:
        if ip in embedding.network:
            return embedding, tuple(ipaddress.IPv4Address(number) for number in embedding.carried(int(ip)))
    return None


def non_public_rule(ip: IPAddress) -> str | None:
    """Why `ip` is not a globally routable unicast address (the rule's name), or None when it is one.

    An allow-list: IPv4 addresses outside every special-purpose block and multicast; IPv6 addresses under
    2000::/3 outside every special-purpose block; IPv6 forms that carry an IPv4 address when that address is.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_rule(ip)
    embedded = embedded_ipv4(ip)
    if embedded is not None:
        embedding, inners = embedded
        for inner in inners:
            rule = _ipv4_rule(inner)
            if rule is not None:
                return f"{rule}, inside the IPv6 address {ip} as {embedding.form} {inner}"
        return embedding.refused_anyway
    for block in IPV6_SPECIAL_PURPOSE:
        if ip in block.network:
            return block.rule
    return None if ip in _IPV6_GLOBAL_UNICAST else _NOT_GLOBAL_UNICAST


def _ipv4_rule(ip: ipaddress.IPv4Address) -> str | None:
    for block in IPV4_SPECIAL_PURPOSE:
        if ip in block.network:
            return block.rule
    return "multicast" if ip in _IPV4_MULTICAST else None
