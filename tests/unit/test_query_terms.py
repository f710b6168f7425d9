from __future__ import annotations

import sqlite3

import pytest

from crawlrag.store import query_terms
from crawlrag.store.query_terms import bm25_idf, fts5_match, fts5_query, informative_terms, keyword_terms, query_style

HOSTILE = [
    "except*",
    '"',
    '""',
    "NEAR(",
    "NEAR(a b",
    "a-b",
    "AND",
    "OR NOT",
    "*",
    "^",
    "(",
    ")",
    "{col}:x",
    "col:x",
    "a + b",
    "-x",
    "\x00",
    "'; DROP TABLE chunks; --",
    "🙂 emoji",
    "ü∂ß",
    "x" * 10_000,
    "a" * 3 + " OR " * 50,
    "NOT",
    "\\",
    "[",
    "]",
    ":",
    "a AND (b OR",
    '"unbalanced',
    "what is it",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(query: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    conn.execute("INSERT INTO t VALUES ('except star groups and NEAR things a b')")
    match = fts5_match(query)
    if match is not None:
        conn.execute("SELECT * FROM t WHERE t MATCH ?", (match,)).fetchall()


def test_identifiers_become_phrases() -> None:
    terms, phrases = keyword_terms("how does os.scandir work with PYTHON_DONT_X")
    assert "scandir" in terms and "os" in terms
    assert ["os", "scandir"] in phrases and ["python", "dont", "x"] in phrases
    assert fts5_match("os.scandir") == '"os scandir" OR "os" OR "scandir"'


def test_stopwords_dropped_unless_only_stopwords() -> None:
    assert keyword_terms("what is the csv module")[0] == ["csv", "module"]
    assert keyword_terms("what is it")[0] == ["what", "is", "it"]


def test_no_words() -> None:
    assert fts5_match("   ***  ") is None


@pytest.mark.parametrize(
    "query",
    [
        "os.scandir",
        "SQLITE_BUSY",
        "PRAGMA journal_mode",
        "git commit --amend",
        "csv.DictWriter",
        "strftime",
        "pre-commit hook",
        "core.autocrlf",
        "sqlite3_open_v2",
        "DictWriter fieldnames order",
        "open()",
    ],
)
def test_named_things_are_identifier_queries(query: str) -> None:
    assert query_style(query) == "identifier"


@pytest.mark.parametrize(
    "query",
    [
        "read a file line by line",
        "get the id of the row that was just inserted",
        "temporarily put away uncommitted changes to work on something else",
    ],
)
def test_described_things_are_natural_queries(query: str) -> None:
    assert query_style(query) == "natural"


def test_hyphenated_words_become_phrases() -> None:
    assert ["force", "with", "lease"] in keyword_terms("--force-with-lease")[1]


def test_common_terms_are_left_out_only_past_the_matched_rows_budget() -> None:
    shares = {"row": 0.4, "inserted": 0.01, "get": 0.2}
    assert informative_terms(["get", "row", "inserted"], shares, 1000) == ["get", "row", "inserted"]
    budget = query_terms.MAX_MATCHED_ROWS
    assert informative_terms(["get", "row", "inserted"], shares, budget * 2) == ["get", "inserted"]
    assert informative_terms(["get", "row", "inserted"], shares, budget * 5) == ["inserted"]
    assert informative_terms(["get", "row"], shares, budget * 10) == ["get"]
    assert informative_terms(["unseen"], shares, budget * 10) == ["unseen"]
    assert informative_terms([], shares, 10) == []
    assert fts5_match("get inserted row", shares, budget * 5) == '"inserted"'
    assert fts5_match("os.path join", {"os": 0.5, "path": 0.5, "join": 0.5}, budget * 10) == '"os path" OR "os"'


def test_splits_put_the_rarest_terms_first_and_bound_the_rest() -> None:
    shares = {"descriptor": 0.01, "file": 0.2, "open": 0.2}
    query = fts5_query("open file descriptor", shares, 10_000)
    assert query is not None
    assert query.match == '"open" OR "file" OR "descriptor"'
    first = query.splits[0]
    assert first.rare == '"descriptor"'
    assert first.both == '("descriptor") AND ("open" OR "file")'
    assert first.bound == pytest.approx(2.2 * (bm25_idf(0.2, 10_000) * 2))
    # A split whose rare parts hold most of the query's rows saves less than it costs: not offered.
    assert [split.rare for split in query.splits] == ['"descriptor"']
    assert fts5_query("file descriptor").splits == ()  # type: ignore[union-attr]


def test_phrases_always_count_as_rare() -> None:
    query = fts5_query("os.path join", {"os": 0.01, "path": 0.02, "join": 0.05}, 10_000)
    assert query is not None
    assert [split.rare for split in query.splits] == ['"os path" OR "os"', '"os path" OR "os" OR "path"']
