"""Sitemap parsing and collection (indexes, gzip, limits, unsafe XML) and robots.txt handling."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from crawl_helpers import ServedSite
from sitegen import serve_site

from crawlrag.config import Settings
from crawlrag.crawl.guard import NetworkPolicy
from crawlrag.crawl.http import FetchError, HttpClient
from crawlrag.crawl.robots import RobotsRules
from crawlrag.crawl.sitemap import (
    MAX_NESTING,
    NotASitemapError,
    SitemapError,
    collect_sitemap_urls,
    decompress,
    parse_sitemap,
)

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
BASE = "https://docs.example.com/sitemap.xml"


def urlset(*locs: str) -> bytes:
    entries = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
    return f'<?xml version="1.0"?><urlset {NS}>{entries}</urlset>'.encode()


def index(*locs: str) -> bytes:
    entries = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{entries}</sitemapindex>'.encode()


def test_parse_urlset_normalises_and_deduplicates() -> None:
    parsed = parse_sitemap(
        urlset("https://Docs.Example.com/a", " https://docs.example.com/b#x ", "/c", "https://docs.example.com/a"),
        BASE,
        max_bytes=10_000,
    )
    assert parsed.kind == "urlset"
    assert parsed.locations == (
        "https://docs.example.com/a",
        "https://docs.example.com/b",
        "https://docs.example.com/c",
    )


def test_parse_index_and_gzip() -> None:
    parsed = parse_sitemap(gzip.compress(index("https://docs.example.com/s1.xml")), BASE, max_bytes=10_000)
    assert parsed.kind == "sitemapindex"
    assert parsed.locations == ("https://docs.example.com/s1.xml",)


def test_parse_without_namespace_and_skips_bad_locs() -> None:
    data = b"<urlset><url><loc>https://x.org/a</loc></url><url><loc>mailto:x@y.z</loc></url><url/></urlset>"
    assert parse_sitemap(data, BASE, max_bytes=10_000).locations == ("https://x.org/a",)


def test_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<urlset><url><loc>&lol2;</loc></url></urlset>"
    )
    with pytest.raises(SitemapError, match="unsafe XML"):
        parse_sitemap(bomb, BASE, max_bytes=10_000)


def test_gzip_bomb_is_capped() -> None:
    with pytest.raises(SitemapError, match="larger than 1000 bytes"):
        decompress(gzip.compress(b"<" + b" " * 100_000), 1000)
    assert decompress(b"plain", 10) == b"plain"
    with pytest.raises(SitemapError, match="corrupt gzip"):
        decompress(b"\x1f\x8b" + b"garbage", 1000)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"<!DOCTYPE html><html><body>hi</body></html>", NotASitemapError),
        (b"<html><body>hi</body></html>", NotASitemapError),
        (b"plain text, not xml", NotASitemapError),
        (b"<rss><channel/></rss>", SitemapError),
        (b"<urlset><url>", SitemapError),
    ],
)
def test_non_sitemaps_are_recognised(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_sitemap(data, BASE, max_bytes=10_000)


def _write(root: Path, name: str, data: bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def test_collect_follows_nested_indexes_with_limits(
    tmp_path: Path, crawl_settings: Callable[..., Settings]
) -> None:
    settings = crawl_settings()
    with serve_site(tmp_path) as base:
        _write(tmp_path, "index.xml", index(f"{base}/a.xml", f"{base}/nested.xml", f"{base}/broken.xml"))
        _write(tmp_path, "a.xml", urlset(*(f"{base}/a{i}" for i in range(5))))
        _write(tmp_path, "nested.xml.gz", gzip.compress(index(f"{base}/b.xml.gz", f"{base}/index.xml")))
        _write(tmp_path, "nested.xml", (tmp_path / "nested.xml.gz").read_bytes())
        _write(tmp_path, "b.xml.gz", gzip.compress(urlset(f"{base}/b0", f"{base}/a0")))
        async with HttpClient(settings, NetworkPolicy(settings)) as http:
            urls = await collect_sitemap_urls(http, f"{base}/index.xml", max_urls=100, max_bytes=100_000)
            assert urls == [*(f"{base}/a{i}" for i in range(5)), f"{base}/b0"]
            capped = await collect_sitemap_urls(http, f"{base}/index.xml", max_urls=3, max_bytes=100_000)
            assert capped == [f"{base}/a0", f"{base}/a1", f"{base}/a2"]
            with pytest.raises(FetchError, match="HTTP 404"):
                await collect_sitemap_urls(http, f"{base}/missing.xml", max_urls=10, max_bytes=100_000)


async def test_collect_stops_at_nesting_limit(tmp_path: Path, crawl_settings: Callable[..., Settings]) -> None:
    settings = crawl_settings()
    with serve_site(tmp_path) as base:
        levels = MAX_NESTING + 2
        for level in range(levels):
            _write(tmp_path, f"level{level}.xml", index(f"{base}/level{level + 1}.xml"))
        _write(tmp_path, f"level{levels}.xml", urlset(f"{base}/too-deep"))
        _write(tmp_path, "shallow.xml", index(f"{base}/leaf.xml"))
        _write(tmp_path, "leaf.xml", urlset(f"{base}/ok"))
        async with HttpClient(settings, NetworkPolicy(settings)) as http:
            assert await collect_sitemap_urls(http, f"{base}/level0.xml", max_urls=10, max_bytes=10_000) == []
            assert await collect_sitemap_urls(http, f"{base}/shallow.xml", max_urls=10, max_bytes=10_000) == [
                f"{base}/ok"
            ]


async def test_robots_rules(site: ServedSite, crawl_settings: Callable[..., Settings]) -> None:
    settings = crawl_settings()
    async with HttpClient(settings, NetworkPolicy(settings)) as http:
        rules = RobotsRules(http, settings.user_agent)
        assert await rules.allowed(site.url("/guide/"))
        assert not await rules.allowed(site.url("/private/secret.html"))
        assert not await rules.allowed(site.url("/private/"))
        assert await rules.allowed(site.url("/privateer.html"))
        disabled = RobotsRules(http, settings.user_agent, enabled=False)
        assert await disabled.allowed(site.url("/private/secret.html"))
    assert site.hits["/robots.txt"] == 1  # cached per crawl


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (403, True), (500, False), (503, False)])
async def test_robots_status_handling(
    tmp_path: Path, crawl_settings: Callable[..., Settings], status: int, allowed: bool
) -> None:
    settings = crawl_settings()
    with serve_site(tmp_path, errors={"/robots.txt": status}) as base:
        async with HttpClient(settings, NetworkPolicy(settings)) as http:
            assert await RobotsRules(http, settings.user_agent).allowed(f"{base}/page.html") is allowed


async def test_robots_agent_specific_rules(tmp_path: Path, crawl_settings: Callable[..., Settings]) -> None:
    _write(tmp_path, "robots.txt", b"User-agent: crawlrag-tests\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    settings = crawl_settings()
    with serve_site(tmp_path) as base:
        async with HttpClient(settings, NetworkPolicy(settings)) as http:
            assert not await RobotsRules(http, settings.user_agent).allowed(f"{base}/page.html")
            assert await RobotsRules(http, "otherbot/2.0").allowed(f"{base}/page.html")
