"""Hostile queries and search options against SearchService: clear errors or plain results, never a change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from indexed import INJECTION, IndexedSite, index_in
from security_helpers import DOCS_HOST, HashEmbedder, content_digest, make_context

from crawlrag.context import AppContext
from crawlrag.search import SearchInputError

pytestmark = pytest.mark.hostile

FTS_SYNTAX = [
    '"',
    '""',
    '"unbalanced quote',
    "NEAR(install pip)",
    "install NEAR/2 pip",
    "title:secret",
    "headings:x OR content:y",
    "^start",
    "pip*",
    "*",
    "(install OR",
    "AND",
    "OR OR OR",
    "NOT install",
    "-install",
    "{content title}: pip",
    "install + - * / pip",
    "chunks_fts MATCH 'x'",
    "'; DROP TABLE pages; --",
    "1' OR '1'='1",
    "%_%",
    "\\",
    "\x1b[31mred\x1b[0m",
    "\u202egnirts desrever",
    "zero\u200bwidth",
    "🙂🙃",
    "ｐｉｐ ｉｎｓｔａｌｌ",
    "os.scandir",
    "a" * 2000,
    " ".join(["install"] * 250),
]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> IndexedSite:
    return index_in(tmp_path_factory.mktemp("search"), max_query_chars=2000, max_match_count=50)


@pytest.fixture
def context(indexed: IndexedSite) -> Iterator[AppContext]:
    before = content_digest(indexed.db_path)
    app = make_context(indexed.settings, HashEmbedder())
    try:
        yield app
    finally:
        app.close()
    assert content_digest(indexed.db_path) == before, "a search changed the database"


def shown(query: str) -> str:
    return repr(query[:24])


@pytest.mark.parametrize("query", FTS_SYNTAX, ids=[shown(q) for q in FTS_SYNTAX])
@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
async def test_query_syntax_is_plain_text(query: str, mode: Any, context: AppContext) -> None:
    response = await context.search.search(query, mode=mode, match_count=5)
    assert len(response.results) <= 5
    for hit in response.results:
        assert hit.source_id and hit.url.startswith(f"http://{DOCS_HOST}:")


@pytest.mark.parametrize(
    ("query", "match_count", "words"),
    [
        ("", 5, "non-empty"),
        ("   \n\t ", 5, "non-empty"),
        ("\x00\x00\x00", 5, "non-empty"),
        ("a" * 2001, 5, "MAX_QUERY_CHARS"),
        ("install", -1, "between 1 and 50"),
        ("install", 0, "between 1 and 50"),
        ("install", 51, "between 1 and 50"),
        ("install", 10**9, "between 1 and 50"),
        ("install", -(10**18), "between 1 and 50"),
    ],
)
async def test_bad_query_or_match_count_is_a_clear_error(
    query: str, match_count: int, words: str, context: AppContext
) -> None:
    for run in (context.search.search, context.search.search_code):
        with pytest.raises(SearchInputError, match=words):
            await run(query, match_count=match_count)


async def test_ten_megabyte_query_is_refused_quickly(context: AppContext) -> None:
    started = time.monotonic()
    with pytest.raises(SearchInputError, match="MAX_QUERY_CHARS"):
        await context.search.search("x" * 10_000_000)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "source", ["nowhere.example", "' OR 1=1 --", "../../etc/passwd", "%", "*", "x" * 100_000, "\x00"]
)
async def test_unknown_source_ids_are_refused_without_an_echo(source: str, context: AppContext) -> None:
    for mode in ("keyword", "vector", "hybrid"):
        with pytest.raises(SearchInputError, match="unknown source") as refused:
            await context.search.search("install", source_id=source, mode=mode)
        assert len(str(refused.value)) < 400


async def test_crawled_text_is_returned_as_content_only(context: AppContext, indexed: IndexedSite) -> None:
    response = await context.search.search("ignore previous instructions token", mode="keyword")
    document = response.to_dict()
    assert any(INJECTION in hit["content"] for hit in document["results"])
    tool_level = {key: value for key, value in document.items() if key != "results"}
    assert INJECTION not in repr(tool_level)
    assert {"results", "versions", "search_mode", "reranking_applied", "reranking_reason", "timings_ms"} == set(
        document
    )
