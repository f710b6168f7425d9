"""Properties (hypothesis): URL normalisation never changes what the network guard decides, host numbers are
read as the C resolver reads them, decompression never passes its limit, stored text is clean, chunking is
deterministic and complete (what the crash invariants rely on).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_helpers import DOCS_HOST, FakeResolver

from crawlrag.chunking import chunk_markdown
from crawlrag.config import Settings
from crawlrag.crawl import CrawlInputError, normalize_url
from crawlrag.crawl.addresses import AddressSyntaxError, host_ip
from crawlrag.crawl.extract import clean_text, extract_text
from crawlrag.crawl.guard import BlockedURLError, NetworkPolicy
from crawlrag.crawl.http import FetchError, _BoundedDecoder
from crawlrag.crawl.urls import MAX_URL_CHARS
from crawlrag.models import content_hash

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = {DOCS_HOST: ["127.0.0.1"], "public.example": ["93.184.216.34"], "mixed.example": ["8.8.8.8", "10.0.0.1"]}
POLICY_SETTINGS = Settings(_env_file=None, allow_private_network=False, allowed_hosts=[DOCS_HOST])
INTERESTING_V4 = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.31.0.1",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.1.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "192.0.2.1",
]


def ipv4_spellings(address: ipaddress.IPv4Address, draw: Callable[..., Any]) -> str:
    """One of the spellings inet_aton and browsers read as `address`: 1 to 4 parts, each dec, hex or octal."""
    value = int(address)
    parts_count = draw(st.integers(1, 4))
    octets = list(address.packed)
    if parts_count == 4:
        numbers = octets
    elif parts_count == 3:
        numbers = [octets[0], octets[1], value & 0xFFFF]
    elif parts_count == 2:
        numbers = [octets[0], value & 0xFFFFFF]
    else:
        numbers = [value]

    def spell(number: int) -> str:
        style = draw(st.sampled_from(["dec", "hex", "HEX", "oct"]))
        if style == "hex":
            return hex(number)
        if style == "HEX":
            return "0X" + format(number, "X")
        if style == "oct" and number:
            return "0" + format(number, "o")
        return str(number)

    return ".".join(spell(number) for number in numbers) + draw(st.sampled_from(["", "."]))


@st.composite
def hosts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["v4", "v4-random", "v6", "name"]))
    if kind in ("v4", "v4-random"):
        if kind == "v4":
            address = ipaddress.IPv4Address(draw(st.sampled_from(INTERESTING_V4)))
        else:
            address = ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1)))
        return ipv4_spellings(address, draw)
    if kind == "v6":
        inner = ipaddress.IPv4Address(draw(st.sampled_from(INTERESTING_V4)))
        v6 = draw(
            st.sampled_from(
                [
                    ipaddress.IPv6Address(f"::ffff:{inner}"),
                    ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(inner)),
                    ipaddress.IPv6Address((0x2002 << 112) | (int(inner) << 80)),
                    ipaddress.IPv6Address("::1"),
                    ipaddress.IPv6Address("fe80::1"),
                    ipaddress.IPv6Address("fd00::5"),
                    ipaddress.IPv6Address("2606:4700::1111"),
                ]
            )
        )
        text = draw(st.sampled_from([v6.compressed, v6.exploded, v6.exploded.upper()]))
        return f"[{text}]"
    name = draw(st.sampled_from(sorted(NAMES)))
    return "".join(char.upper() if draw(st.booleans()) else char for char in name) + draw(st.sampled_from(["", "."]))


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTTps"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = draw(st.sampled_from(["", "/", "/a/../b", "/x?y=1#frag", "/%7euser"]))
    return f"{scheme}://{draw(hosts())}{port}{path}"


def decision(url: str) -> tuple[str, ...]:
    """What the guard does with `url`: allowed, or refused with the address and rule it names."""

    async def check() -> tuple[str, ...]:
        policy = NetworkPolicy(POLICY_SETTINGS, resolver=FakeResolver(NAMES))
        try:
            await policy.check(url)
        except BlockedURLError as exc:
            found = re.search(r"non-public address (\S+) \((.+?)\)\. Set", str(exc))
            return ("refused", *(found.groups() if found else (str(exc).split(": ", 1)[-1],)))
        return ("allowed",)

    return asyncio.run(check())


@FAST
@given(urls())
def test_normalisation_never_changes_the_guard_decision(url: str) -> None:
    try:
        normalized = normalize_url(url)
    except CrawlInputError:
        return
    assert decision(url) == decision(normalized), (url, normalized)


@FAST
@given(st.data())
def test_numeric_hosts_are_read_as_the_c_resolver_reads_them(data: st.DataObject) -> None:
    address = ipaddress.IPv4Address(data.draw(st.integers(0, 2**32 - 1)))
    spelled = ipv4_spellings(address, data.draw)
    assert host_ip(spelled) == address
    assert socket.inet_aton(spelled.rstrip(".")) == address.packed  # local parsing only, no lookup
    assert normalize_url(f"http://{spelled}/") == f"http://{address}/"


@FAST
@given(st.text(alphabet=st.sampled_from(list("0123456789xX.abcdef")), min_size=1, max_size=20))
def test_host_numbers_that_parse_agree_with_inet_aton(host: str) -> None:
    try:
        parsed = host_ip(host)
    except AddressSyntaxError:
        return
    # A bare "0x" part is 0 for the WHATWG parser (and so for browsers) while glibc's inet_aton refuses it;
    # crawlrag reads it as browsers do, and the URL is normalised to that address before the guard and the
    # connection see it, so both judge the same address.
    if parsed is not None and not any(part.lower() == "0x" for part in host.rstrip(".").split(".")):
        assert socket.inet_aton(host.rstrip(".")) == parsed.packed


_URL_NOISE = st.text(alphabet=st.sampled_from(list("aZ09-._~:@/?#[]%!$&'()*+,;= é\\\t\x00")), max_size=40)


@FAST
@given(st.sampled_from(["http://", "https://", "ftp://", "//", "", "HTTP://u:p@"]), hosts(), _URL_NOISE)
def test_normalized_urls_are_safe_to_fetch(prefix: str, host: str, rest: str) -> None:
    try:
        normalized = normalize_url(prefix + host + "/" + rest)
    except CrawlInputError:
        return
    scheme, _, remainder = normalized.partition("://")
    assert scheme in ("http", "https") and "#" not in normalized and len(normalized) <= MAX_URL_CHARS
    netloc = remainder.split("/", 1)[0]
    assert "@" not in netloc and not any(char.isspace() or char == "\x00" for char in normalized)
    assert normalize_url(normalized) == normalized


@FAST
@given(st.binary(max_size=20_000), st.integers(1, 30_000), st.integers(1, 5000), st.sampled_from(["gzip", "deflate"]))
def test_bounded_decoder_never_passes_its_limit(data: bytes, limit: int, piece: int, coding: str) -> None:
    if coding == "gzip":
        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    else:
        compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)
    encoded = compressor.compress(data) + compressor.flush()
    decoder = _BoundedDecoder(coding, limit)
    output = b""
    try:
        for start in range(0, len(encoded), piece):
            output += decoder.feed(encoded[start : start + piece])
            assert len(output) <= limit
        output += decoder.finish()
    except FetchError as exc:
        assert len(data) > limit and "MAX_RESPONSE_BYTES" in str(exc)
        return
    assert len(data) <= limit and output == data


_ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)


@settings(max_examples=50, deadline=None)
@given(_ANY_TEXT)
def test_stored_text_has_no_control_or_tag_characters(text: str) -> None:
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    for char in cleaned:
        code = ord(char)
        assert char in "\t\n\r" or not (code < 0x20 or 0x7F <= code <= 0x9F or 0xE0000 <= code <= 0xE007F)
    markdown = extract_text(text, "http://docs.test/notes.txt").markdown
    assert "\x00" not in markdown and "\x1b" not in markdown


@FAST
@given(st.text(alphabet=st.sampled_from("ab #`~\n.-*[]()\x00\x1b"), max_size=4000), st.integers(200, 1500))
def test_chunks_are_deterministic_complete_and_hashed(markdown: str, size: int) -> None:
    """The crash invariants compare stored chunks with chunking the stored markdown again: that must be exact."""
    first = chunk_markdown(markdown, url="http://docs.test/p", title="T", chunk_size=size)
    again = chunk_markdown(markdown, url="http://docs.test/p", title="T", chunk_size=size)
    assert first == again
    assert [chunk.chunk_index for chunk in first] == list(range(len(first)))
    for chunk in first:
        assert chunk.content_hash == content_hash(chunk.content) and chunk.char_count == len(chunk.content)


@pytest.mark.parametrize("host", ["0x100000000", "1.2.3.4.5", "256.1.1.1", "1.0x1000000", "09.1.1.1", "1..1"])
def test_invalid_numeric_hosts_are_refused_by_both(host: str) -> None:
    with pytest.raises(CrawlInputError):
        normalize_url(f"http://{host}/")
    assert decision(f"http://{host}/")[0] == "refused"
