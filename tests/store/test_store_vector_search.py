"""Vector search: exact top-k against numpy brute force, with and without a source filter."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from store_helpers import DIM, MODEL, brute_force, page_write, unit_vectors

from crawlrag.store.base import Store

SOURCES = ("a.example.com", "b.example.com", "c.example.com")


class Corpus:
    """Pages of every source, with each chunk's vector keyed by (url, chunk index)."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, int]] = []
        self.sources: list[str] = []
        self.rows: list[np.ndarray] = []

    def add(self, store: Store, rng: np.random.Generator, source: str, url: str, count: int) -> None:
        vectors = unit_vectors(rng, count)
        store.write_page(page_write(url, source, [f"chunk {i} of {url}" for i in range(count)], vectors))
        self.keys += [(url, i) for i in range(count)]
        self.sources += [source] * count
        self.rows.append(vectors)

    def expected(self, query: np.ndarray, limit: int, source: str | None = None) -> list[object]:
        matrix = np.concatenate(self.rows)
        keep = [i for i, s in enumerate(self.sources) if source is None or s == source]
        return brute_force(matrix[keep], [self.keys[i] for i in keep], query, limit)


@pytest.fixture
def corpus(store: Store, rng: np.random.Generator) -> Corpus:
    corpus = Corpus()
    for source in SOURCES:
        store.ensure_source(source, MODEL, DIM)
    # Uneven sources: c holds 5 rows of 125, so a filter keeps 4% of the table.
    for page in range(8):
        corpus.add(store, rng, "a.example.com", f"https://a.example.com/{page}", 10)
    for page in range(4):
        corpus.add(store, rng, "b.example.com", f"https://b.example.com/{page}", 10)
    corpus.add(store, rng, "c.example.com", "https://c.example.com/only", 5)
    return corpus


def test_unfiltered_search_is_exact(store: Store, corpus: Corpus, rng: np.random.Generator) -> None:
    for query in unit_vectors(rng, 5):
        hits = store.vector_search(query, 10)
        assert [(hit.url, hit.chunk_index) for hit in hits] == corpus.expected(query, 10)


@pytest.mark.parametrize("source", SOURCES)
def test_filtered_search_is_exact(store: Store, corpus: Corpus, rng: np.random.Generator, source: str) -> None:
    for query in unit_vectors(rng, 5):
        hits = store.vector_search(query, 10, source)
        expected = corpus.expected(query, 10, source)
        assert [(hit.url, hit.chunk_index) for hit in hits] == expected
        assert len(hits) == min(10, corpus.sources.count(source))
        assert {hit.source_id for hit in hits} == {source}


def test_hit_fields_and_similarity(store: Store, corpus: Corpus, rng: np.random.Generator) -> None:
    query = unit_vectors(rng, 1)[0]
    hits = store.vector_search(query, 125)
    assert len(hits) == 125
    matrix = np.concatenate(corpus.rows)
    by_key = {key: matrix[i] for i, key in enumerate(corpus.keys)}
    for hit in hits:
        assert hit.score == hit.similarity
        assert hit.keyword_score is None and hit.rerank_score is None
        assert hit.similarity == pytest.approx(float(by_key[(hit.url, hit.chunk_index)] @ query), abs=1e-5)
        assert hit.content == f"chunk {hit.chunk_index} of {hit.url}"
        assert hit.title == "A page" and hit.headings == "# A page"
    similarities = [hit.similarity for hit in hits]
    assert similarities == sorted(similarities, reverse=True)
    # The query itself scores 1; its opposite scores -1.
    stored = matrix[7]
    assert store.vector_search(stored, 1)[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert store.vector_search(-stored, 125)[-1].similarity == pytest.approx(-1.0, abs=1e-5)


def test_edge_limits(store: Store, corpus: Corpus, rng: np.random.Generator) -> None:
    query = unit_vectors(rng, 1)[0]
    assert store.vector_search(query, 0) == []
    assert store.vector_search(query, 5, "unknown.example.com") == []
    assert len(store.vector_search(query, 1000, "c.example.com")) == 5
    assert len(store.vector_search(query, 1000)) == 125


def test_empty_store(store: Store, rng: np.random.Generator) -> None:
    assert store.vector_search(unit_vectors(rng, 1)[0], 10) == []
    assert store.code_vector_search(unit_vectors(rng, 1)[0], 10, "a.example.com") == []


def test_search_after_many_replacements_returns_full_lists(store: Store, rng: np.random.Generator) -> None:
    # Replaced rows linger as dead tuples in PostgreSQL's HNSW graph until vacuum; they must not shorten results.
    store.ensure_source("a.example.com", MODEL, DIM)
    corpus = Corpus()
    for _ in range(6):
        corpus = Corpus()
        for page in range(5):
            corpus.add(store, rng, "a.example.com", f"https://a.example.com/{page}", 8)
    for query in unit_vectors(rng, 3):
        hits = store.vector_search(query, 20)
        assert [(hit.url, hit.chunk_index) for hit in hits] == corpus.expected(query, 20)


def test_second_instance_sees_writes_and_deletes_of_the_first(
    open_store: Callable[[], Store], rng: np.random.Generator
) -> None:
    first, second = open_store(), open_store()
    first.ensure_source("a.example.com", MODEL, DIM)
    query = unit_vectors(rng, 1)[0]
    assert second.vector_search(query, 5) == []

    first.write_page(page_write("https://a.example.com/1", "a.example.com", ["one", "two"], unit_vectors(rng, 2)))
    assert sorted(hit.content for hit in second.vector_search(query, 5)) == ["one", "two"]
    assert len(second.vector_search(query, 5, "a.example.com")) == 2

    first.write_page(page_write("https://a.example.com/1", "a.example.com", ["three"], unit_vectors(rng, 1)))
    assert [hit.content for hit in second.vector_search(query, 5)] == ["three"]

    first.delete_source("a.example.com")
    assert second.vector_search(query, 5) == []
    assert second.list_sources() == []


def test_two_instances_writing_in_turn_both_search_every_row(
    open_store: Callable[[], Store], rng: np.random.Generator
) -> None:
    # Each instance applies its own writes to its matrix and catches up with the other's: rows replaced or
    # deleted by one must leave the other's matrix too, and rows added by one must never be skipped by the other.
    first, second = open_store(), open_store()
    first.ensure_source("a.example.com", MODEL, DIM)
    corpus: dict[str, tuple[list[str], np.ndarray]] = {}

    def write(store: Store, page: int, texts: list[str]) -> None:
        url = f"https://a.example.com/{page}"
        corpus[url] = (texts, unit_vectors(rng, len(texts)))
        store.write_page(page_write(url, "a.example.com", *corpus[url]))

    write(first, 1, ["one", "two"])
    write(second, 2, ["three"])
    write(first, 3, ["four", "five"])
    write(second, 1, ["six"])  # replaces the first's page 1
    write(first, 4, ["seven"])
    expected = sorted(text for texts, _ in corpus.values() for text in texts)
    query = unit_vectors(rng, 1)[0]
    for store in (first, second):
        assert sorted(hit.content for hit in store.vector_search(query, 20)) == expected
    matrix = np.concatenate([vectors for _, vectors in corpus.values()])
    texts = [text for texts, _ in corpus.values() for text in texts]
    nearest = [texts[i] for i in np.argsort(-(matrix @ query), kind="stable")[:3]]
    assert [hit.content for hit in second.vector_search(query, 3)] == nearest


def test_in_memory_sqlite_store_searches_its_one_connection(rng: np.random.Generator) -> None:
    from crawlrag.store.sqlite import SQLiteStore

    store = SQLiteStore(":memory:")
    try:
        store.ensure_source("a.example.com", MODEL, DIM)
        vectors = unit_vectors(rng, 2)
        store.write_page(page_write("https://a.example.com/1", "a.example.com", ["one apple", "two pears"], vectors))
        assert [hit.content for hit in store.vector_search(vectors[1], 1)] == ["two pears"]
        assert [hit.content for hit in store.keyword_search("apple", 5)] == ["one apple"]
        store.delete_source("a.example.com")
        assert store.vector_search(vectors[1], 5) == [] and store.keyword_search("apple", 5) == []
    finally:
        store.close()
