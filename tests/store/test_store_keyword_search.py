"""Keyword search: ranking, identifiers, source filters and hostile input (both backends)."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import DIM, MODEL, page_write, unit_vectors

from crawlrag.store.base import Store

DOCS = {
    "https://a.example.com/files": [
        "Use os.scandir to list a directory; it yields entries with cached stat data.",
        "The os module also offers listdir, and path helpers in another part of the library.",
        "Set PYTHONDONTWRITEBYTECODE to stop Python from writing bytecode files.",
    ],
    "https://a.example.com/net": [
        "Python sockets: python servers accept python connections in python loops.",
        "Crawling a site politely means reading robots.txt before crawling pages.",
    ],
    "https://b.example.com/misc": [
        "Python python python: a chunk that repeats the common word and nothing rare.",
        "The scandir function of the os module is faster than listdir for large trees.",
    ],
}


@pytest.fixture
def indexed(store: Store, rng: np.random.Generator) -> Store:
    for source in ("a.example.com", "b.example.com"):
        store.ensure_source(source, MODEL, DIM)
    for url, texts in DOCS.items():
        source = url.split("/")[2]
        store.write_page(page_write(url, source, texts, unit_vectors(rng, len(texts)), title="Reference"))
    return store


def test_finds_words_and_stems(indexed: Store) -> None:
    hits = indexed.keyword_search("crawl", 10)
    assert [hit.content for hit in hits] == [DOCS["https://a.example.com/net"][1]]
    assert hits[0].keyword_score is not None and hits[0].keyword_score > 0
    assert hits[0].score == hits[0].keyword_score and hits[0].similarity is None
    assert (hits[0].source_id, hits[0].title, hits[0].chunk_index) == ("a.example.com", "Reference", 1)


def test_dotted_identifier_ranks_the_adjacent_pair_first(indexed: Store) -> None:
    hits = indexed.keyword_search("os.scandir", 10)
    assert hits[0].content == DOCS["https://a.example.com/files"][0]
    # Rows holding both words apart, or one of them, still match.
    assert DOCS["https://b.example.com/misc"][1] in [hit.content for hit in hits]


def test_environment_variable_identifier(indexed: Store) -> None:
    hits = indexed.keyword_search("PYTHONDONTWRITEBYTECODE", 10)
    assert [hit.content for hit in hits] == [DOCS["https://a.example.com/files"][2]]


def test_rare_terms_outweigh_repeated_common_ones(indexed: Store) -> None:
    # "python" is in four of seven chunks, "bytecode" in one: the idf puts the rare match on top.
    hits = indexed.keyword_search("python bytecode", 10)
    assert hits[0].content == DOCS["https://a.example.com/files"][2]
    scores = [hit.keyword_score for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_headings_and_titles_outrank_body_text(store: Store, rng: np.random.Generator) -> None:
    store.ensure_source("a.example.com", MODEL, DIM)
    body = "walrus facts and figures"
    filler = "plain text about nothing in particular"
    store.write_page(
        page_write(
            "https://a.example.com/w",
            "a.example.com",
            [body, filler],
            unit_vectors(rng, 2),
            title="Animals",
            headings=["# Animals", "# Animals > Walrus"],
        )
    )
    hits = store.keyword_search("walrus", 10)
    assert [hit.content for hit in hits] == [filler, body]


def test_source_filter(indexed: Store) -> None:
    assert {hit.source_id for hit in indexed.keyword_search("scandir", 10, "b.example.com")} == {"b.example.com"}
    assert len(indexed.keyword_search("scandir", 10)) == 2
    assert indexed.keyword_search("scandir", 10, "unknown.example.com") == []
    assert indexed.keyword_search("scandir", 0) == []
    assert len(indexed.keyword_search("python", 2)) == 2


HOSTILE = [
    "except*",
    '"',
    '"unbalanced',
    "NEAR(",
    "NEAR(a b",
    "a-b",
    "AND",
    "OR NOT",
    "*",
    "\x00",
    "os\x00scandir",
    "🦀🦀",
    "🦀 crab",
    "x" * 10_000,
    " ".join(["word"] * 5_000),
    "a & b | !c <-> d:* 'e'",
    "'; DROP TABLE pages; --",
    "\\",
    "(((",
    ")",
    ":*",
    "-",
    "^",
    "column:value",
    "",
    "   ",
    "the of and",
]


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q[:20]))
def test_hostile_queries_never_raise(indexed: Store, query: str) -> None:
    hits = indexed.keyword_search(query, 5)
    assert isinstance(hits, list) and len(hits) <= 5
    assert isinstance(indexed.code_keyword_search(query, 5, "a.example.com"), list)


def test_operator_words_are_plain_words(store: Store, rng: np.random.Generator) -> None:
    store.ensure_source("a.example.com", MODEL, DIM)
    texts = ["Catch groups with except* in Python 3.11.", "NEAR means close by.", "Nothing relevant here."]
    store.write_page(page_write("https://a.example.com/x", "a.example.com", texts, unit_vectors(rng, 3)))
    assert [hit.content for hit in store.keyword_search("except*", 5)] == [texts[0]]
    assert [hit.content for hit in store.keyword_search("NEAR(", 5)] == [texts[1]]
