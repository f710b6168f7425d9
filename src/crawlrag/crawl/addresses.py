"""IP addresses in URLs: reading a host as an address the way browsers and the C resolver do, and naming the
non-public range an address belongs to.

`http://2130706433/`, `http://0x7f.1/` and `http://0177.0.0.1/` all reach 127.0.0.1: `inet_aton` (and so
`getaddrinfo`) and the WHATWG URL standard read decimal, hex and octal parts and short forms. A check that treats
those hosts as names would ask DNS about them while the connection goes to loopback, so both the URL normaliser
and the network guard read them here, the same way.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HEX_PART = re.compile(r"^0[xX][0-9a-fA-F]*$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Checked in order; the first range that holds the address names the rule that refused it.
_RULES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = (
    ("unspecified", (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))),
    ("loopback", (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))),
    (
        "link-local (this range holds cloud metadata services such as 169.254.169.254)",
        (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10")),
    ),
    (
        "private",
        (
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("172.16.0.0/12"),
            ipaddress.ip_network("192.168.0.0/16"),
            ipaddress.ip_network("fc00::/7"),  # unique local addresses
            ipaddress.ip_network("fec0::/10"),  # deprecated site-local addresses
        ),
    ),
    ("carrier-grade NAT (shared address space)", (ipaddress.ip_network("100.64.0.0/10"),)),
    ("multicast", (ipaddress.ip_network("224.0.0.0/4"), ipaddress.ip_network("ff00::/8"))),
    ("broadcast", (ipaddress.ip_network("255.255.255.255/32"),)),
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


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and is delivered to: mapped, NAT64, 6to4 or Teredo client."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def non_public_rule(ip: IPAddress) -> str | None:
    """Why `ip` is not a public internet address (the rule's name), or None when it is one."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        rule = non_public_rule(inner)
        return f"{rule}, inside the IPv6 address {ip}" if rule else None
    for name, networks in _RULES:
        if any(ip.version == network.version and ip in network for network in networks):
            return name
    if not ip.is_global:
        return "reserved (not globally routable)"
    return None
