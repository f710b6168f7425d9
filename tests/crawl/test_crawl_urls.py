"""URL normalisation, classification, site membership and include/exclude filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawlrag.crawl import (
    CrawlInputError,
    is_llms_txt,
    normalize_url,
    passes_filters,
    same_site,
    source_id_for,
    url_kind,
)
from crawlrag.crawl.urls import matches_any, try_normalize_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com/a/b/../c/./d", "http://example.com/a/c/d"),
        ("http://example.com/../../a", "http://example.com/a"),
        ("http://example.com/a/..", "http://example.com/"),
        ("http://example.com/docs/#section", "http://example.com/docs/"),
        ("http://example.com/docs#", "http://example.com/docs"),
        ("http://example.com/search?q=a+b&x=1#frag", "http://example.com/search?q=a+b&x=1"),
        ("http://example.com/%7euser/%2fpath%3F", "http://example.com/~user/%2Fpath%3F"),
        ("http://example.com/a b/ü", "http://example.com/a%20b/%C3%BC"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("  http://example.com/padded  ", "http://example.com/padded"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://example.com./a", "http://example.com/a"),
        ("http://example.com/keep/trailing/", "http://example.com/keep/trailing/"),
        ("http://example.com/no/trailing", "http://example.com/no/trailing"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_normalize_url_resolves_against_base() -> None:
    base = "http://example.com/docs/guide/intro.html"
    assert normalize_url("../api/", base) == "http://example.com/docs/api/"
    assert normalize_url("/root", base) == "http://example.com/root"
    assert normalize_url("//cdn.example.net/x", base) == "http://cdn.example.net/x"
    assert normalize_url("#top", base) == base
    assert normalize_url("?page=2", base) == base + "?page=2"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("javascript:alert(1)", "only http:// and https://"),
        ("mailto:someone@example.com", "only http:// and https://"),
        ("example.com/docs", "no scheme"),
        ("http:///path-only", "no host"),
        ("http://user:secret@example.com/", "credentials"),
        ("http://example.com:99999/", "Invalid URL"),
        ("http://exa mple.com/", "invalid host name"),
    ],
)
def test_normalize_url_rejects(url: str, message: str) -> None:
    with pytest.raises(CrawlInputError, match=message):
        normalize_url(url)


def test_rejected_credentials_are_not_echoed() -> None:
    with pytest.raises(CrawlInputError) as info:
        normalize_url("https://alice:hunter2@example.com/")
    assert "hunter2" not in str(info.value)


def test_try_normalize_url_ignores_unusable_links() -> None:
    assert try_normalize_url("mailto:a@b.c") is None
    assert try_normalize_url("javascript:void(0)") is None
    assert try_normalize_url("/x", "http://example.com/") == "http://example.com/x"


_url_text = st.text(alphabet=st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@/?#[]% é\\")), min_size=0, max_size=30)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTTps"]))
    host = draw(st.sampled_from(["example.com", "Docs.Example.COM", "127.0.0.1", "[::1]", "xn--bcher-kva.example"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    return f"{scheme}://{host}{port}/{draw(_url_text)}"


@given(urls())
def test_normalize_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once


@given(urls())
def test_fragments_never_survive(url: str) -> None:
    assert "#" not in normalize_url(url)


@given(urls(), _url_text)
def test_relative_links_normalise_to_the_same_site(base: str, link: str) -> None:
    normalised = try_normalize_url(link.lstrip("/\\"), base)  # a path, never a scheme-relative URL
    if normalised is not None:
        assert same_site(normalised, normalize_url(base))
        assert normalize_url(normalised) == normalised


def test_source_id_is_host_and_non_default_port() -> None:
    assert source_id_for("https://Docs.Example.com/a/b") == "docs.example.com"
    assert source_id_for("http://127.0.0.1:8000/x") == "127.0.0.1:8000"
    assert source_id_for("https://example.com:443/") == "example.com"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://example.com/sitemap.xml", "sitemap"),
        ("https://example.com/sitemap_index.xml", "sitemap"),
        ("https://example.com/sitemaps/docs.xml.gz", "sitemap"),
        ("https://example.com/feeds/pages.xml", "sitemap"),
        ("https://example.com/sitemap", "sitemap"),
        ("https://example.com/llms.txt", "text"),
        ("https://example.com/llms-full.txt", "text"),
        ("https://example.com/docs/README.md", "text"),
        ("https://example.com/notes.TXT", "text"),
        ("https://example.com/", "page"),
        ("https://example.com/docs/intro.html", "page"),
        ("https://example.com/docs/?file=a.txt", "page"),
    ],
)
def test_url_kind(url: str, kind: str) -> None:
    assert url_kind(url) == kind


def test_is_llms_txt() -> None:
    assert is_llms_txt("https://example.com/llms.txt")
    assert is_llms_txt("https://example.com/docs/LLMS.TXT")
    assert not is_llms_txt("https://example.com/llms-full.txt")
    assert not is_llms_txt("https://example.com/notes.txt")


def test_same_site() -> None:
    assert same_site("https://example.com/a", "http://example.com/b")
    assert same_site("https://www.example.com/a", "https://example.com/b")
    assert not same_site("https://docs.example.com/", "https://example.com/")
    assert not same_site("http://127.0.0.1:8000/", "http://127.0.0.1:9000/")


@pytest.mark.parametrize(
    ("url", "include", "exclude", "passes"),
    [
        ("https://x.org/docs/api/a.html", (), (), True),
        ("https://x.org/docs/api/a.html", ("/docs/*",), (), True),
        ("https://x.org/blog/a.html", ("/docs/*",), (), False),
        ("https://x.org/docs/api/a.html", ("*/api/*",), (), True),
        ("https://x.org/docs/api/a.html", (), ("*/api/*",), False),
        ("https://x.org/docs/api/a.html", ("/docs/*",), ("/docs/api/*",), False),
        ("https://x.org/docs/API/a.html", (), ("*/api/*",), True),  # case-sensitive, like paths
        ("https://x.org/docs/a.html?lang=de", (), ("*lang=*",), False),
        ("https://x.org/docs/a.pdf", (), ("*.pdf",), False),
    ],
)
def test_passes_filters(url: str, include: tuple[str, ...], exclude: tuple[str, ...], passes: bool) -> None:
    assert passes_filters(url, include, exclude) is passes


def test_matches_any_checks_url_and_path() -> None:
    assert matches_any("https://x.org/a/b", ["https://x.org/*"])
    assert matches_any("https://x.org/a/b", ["/a/*"])
    assert not matches_any("https://x.org/a/b", [])
