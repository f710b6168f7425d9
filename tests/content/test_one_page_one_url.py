"""One page, one URL: canonical links, index.html and trailing slashes collapse; robots meta tags are honoured."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sitegen import BASE_URL_PLACEHOLDER, serve_site

from crawlrag.config import Settings
from crawlrag.crawl import Crawler, CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.extract import extract_html
from crawlrag.crawl.urls import page_key
from crawlrag.models import Page

PROSE = "This page explains one part of the project in enough plain words to be worth indexing on its own."


def page(title: str, *, head: str = "", links: tuple[str, ...] = ()) -> str:
    items = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title>{head}</head><body><main><h1>{title}</h1>"
        f"<p>{PROSE} ({title})</p><ul>{items}</ul></main></body></html>"
    )


SITE = {
    "index.html": page(
        "Home",
        links=(
            "a.html",
            "dup-a.html",
            "alias.html",
            "elsewhere.html",
            "dir/",
            "dir/index.html",
            "dir",
            "noindex.html",
            "nofollow.html",
        ),
    ),
    "a.html": page("A", head=f'<link rel="canonical" href="{BASE_URL_PLACEHOLDER}/a.html">'),
    "dup-a.html": page("A copy", head='<link rel="canonical" href="a.html">'),
    "alias.html": page("Alias", head='<link rel="canonical" href="/target.html">'),
    "elsewhere.html": page("Mirror", head='<link rel="canonical" href="https://upstream.example/original.html">'),
    "dir/index.html": page("Directory"),
    "noindex.html": page("Hidden", head='<meta name="robots" content="noindex">', links=("from-noindex.html",)),
    "from-noindex.html": page("Reached through a noindex page"),
    "nofollow.html": page("Closed", head='<meta name="ROBOTS" content="noindex, nofollow">', links=("secret.html",)),
    "secret.html": page("Never reached"),
}


# Which page answers late: the result must not depend on which fetch of an alias finishes first.
@pytest.fixture(params=[None, "/a.html", "/dup-a.html", "/index.html"], ids=["no-delay", "a-late", "dup-late", "home"])
def base_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    for name, html in SITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(html)
    if request.param is not None:
        (tmp_path / ".sitegen.json").write_text(json.dumps({"slow_prefix": request.param, "slow_seconds": 0.3}))
    with serve_site(tmp_path) as url:
        yield url


async def crawl(settings: Settings, url: str) -> tuple[dict[str, Page], dict[str, str]]:
    pages: dict[str, Page] = {}
    skipped: dict[str, str] = {}
    async with Crawler(settings) as crawler:
        async for result in crawler.crawl(CrawlRequest(url=url, max_depth=3)):
            if isinstance(result, Page):
                pages[result.url] = result
            elif isinstance(result, PageSkipped):
                skipped[result.url] = result.reason
            else:
                assert isinstance(result, PageFailure)
                raise AssertionError(f"{result.url} failed: {result.reason}")
    return pages, skipped


async def test_aliases_collapse_and_robots_meta_is_honoured(
    base_url: str, make_settings: Callable[..., Settings]
) -> None:
    pages, skipped = await crawl(make_settings(browser="never"), base_url + "/index.html")
    stored = {url.removeprefix(base_url) for url in pages}
    assert stored == {"/index.html", "/a.html", "/target.html", "/elsewhere.html", "/dir/", "/from-noindex.html"}
    assert pages[base_url + "/a.html"].title == "A"  # the page itself, not the copy that names it canonical
    assert pages[base_url + "/target.html"].title == "Alias"  # filed under its canonical URL
    assert skipped[base_url + "/dup-a.html"] == f"duplicate of {base_url}/a.html, already crawled"
    assert skipped[base_url + "/noindex.html"] == "noindex"
    assert skipped[base_url + "/nofollow.html"] == "noindex"
    assert base_url + "/secret.html" not in pages and base_url + "/secret.html" not in skipped
    # /dir/index.html and /dir are the page /dir/, linked first: they are not even fetched.
    assert not {base_url + "/dir/index.html", base_url + "/dir"} & (pages.keys() | skipped.keys())


def test_extractor_reports_canonical_and_robots() -> None:
    html = (
        '<html><head><link rel="canonical" href="/docs/"><meta name="robots" content="none"></head>'
        '<body><main><p>Text <a href="/next.html">next</a></p></main></body></html>'
    )
    extracted = extract_html(html, "https://docs.test/docs/index.html")
    assert extracted.canonical == "https://docs.test/docs/"
    assert extracted.noindex and extracted.links == ()  # "none" is noindex and nofollow
    other = extract_html(html.replace('href="/docs/"', 'href="https://other.test/docs/"'), "https://docs.test/a")
    assert other.canonical is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://docs.test/guide/", "https://docs.test/guide/index.html"),
        ("https://docs.test/guide", "https://docs.test/guide/"),
        ("https://www.docs.test/", "https://docs.test/index.htm"),
        ("https://docs.test/a?x=1", "http://docs.test/a/?x=1"),
    ],
)
def test_page_key_collapses_spellings_of_one_page(a: str, b: str) -> None:
    assert page_key(a) == page_key(b)


def test_page_key_keeps_pages_apart() -> None:
    assert page_key("https://docs.test/a.html") != page_key("https://docs.test/a")
    assert page_key("https://docs.test/a?x=1") != page_key("https://docs.test/a?x=2")
    assert page_key("https://docs.test:8080/") != page_key("https://docs.test/")
