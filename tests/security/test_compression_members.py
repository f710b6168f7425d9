"""Bodies made of several gzip members or zlib streams: all of them are decoded, under one decompression cap."""

from __future__ import annotations

import zlib

import pytest
from hostile_http import HostileServer, body, gzipped
from security_helpers import DOCS_HOST, FakeResolver, SettingsFactory

from crawlrag.crawl.guard import NetworkPolicy
from crawlrag.crawl.http import FetchError, HttpClient, _BoundedDecoder

pytestmark = pytest.mark.hostile

PARTS = [b"<html><head><title>Members</title></head><body><main>", b"<p>second member</p>", b"<p>third</p></main>"]


def members(coding: str) -> bytes:
    if coding == "gzip":
        return gzipped(PARTS[0]) + b"\0\0\0" + gzipped(PARTS[1]) + gzipped(PARTS[2])  # zero padding is allowed
    return b"".join(zlib.compress(part) for part in PARTS)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_every_member_is_decoded(
    coding: str, server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    server.route("/members", body(members(coding), headers={"Content-Encoding": coding}))
    settings = hostile_settings()
    async with HttpClient(settings, NetworkPolicy(settings, resolver=resolver)) as http:
        response = await http.get(server.url("/members", host=DOCS_HOST))
    assert response.body == b"".join(PARTS)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 64, 10_000])
def test_members_split_anywhere_across_network_chunks(step: int) -> None:
    data = members("gzip")
    decoder = _BoundedDecoder("gzip", 1024)
    out = b"".join(decoder.feed(data[start : start + step]) for start in range(0, len(data), step))
    assert out + decoder.finish() == b"".join(PARTS)


def test_bytes_after_the_last_member_are_ignored() -> None:
    decoder = _BoundedDecoder("gzip", 1024)
    assert decoder.feed(gzipped(b"page") + b"trailing junk" + gzipped(b"not read")) + decoder.finish() == b"page"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_the_cap_counts_all_members_together(
    coding: str, server: HostileServer, hostile_settings: SettingsFactory, resolver: FakeResolver
) -> None:
    """Each member stays under MAX_RESPONSE_BYTES; together they pass it, and the download stops."""
    limit = 256 * 1024
    zeros = b"\0" * (200 * 1024)
    member = gzipped(zeros) if coding == "gzip" else zlib.compress(zeros, 9)
    server.route("/bomb", body(member * 50, headers={"Content-Encoding": coding}))
    settings = hostile_settings(max_response_bytes=limit)
    async with HttpClient(settings, NetworkPolicy(settings, resolver=resolver)) as http:
        with pytest.raises(FetchError, match="once decompressed"):
            await http.get(server.url("/bomb", host=DOCS_HOST))
