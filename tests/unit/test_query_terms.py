from __future__ import annotations

import sqlite3

import pytest

from crawlrag.store.query_terms import fts5_match, keyword_terms

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
