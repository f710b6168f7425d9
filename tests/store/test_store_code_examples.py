"""Code examples: vector and keyword search, source filters, replacement with their page."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import DIM, MODEL, brute_force, code_example, page_write, unit_vectors

from crawlrag.store.base import Store

EXAMPLES = {
    "a.example.com": [
        ("import os\nfor entry in os.scandir('.'):\n    print(entry.name)", "List a directory with os.scandir"),
        ("async with httpx.AsyncClient() as client:\n    await client.get(url)", "Fetch a page with httpx"),
    ],
    "b.example.com": [
        ("SELECT embedding <=> $1 FROM items ORDER BY 1 LIMIT 10", "Nearest neighbours in SQL"),
    ],
}


@pytest.fixture
def stored(store: Store, rng: np.random.Generator) -> tuple[Store, np.ndarray, list[tuple[str, int]]]:
    vectors, keys = [], []
    for source, examples in EXAMPLES.items():
        store.ensure_source(source, MODEL, DIM)
        url = f"https://{source}/examples"
        code = [code_example(url, i, text, summary) for i, (text, summary) in enumerate(examples)]
        code_vectors = unit_vectors(rng, len(code))
        store.write_page(page_write(url, source, ["prose"], unit_vectors(rng, 1), code=code, code_vectors=code_vectors))
        vectors.append(code_vectors)
        keys += [(source, i) for i in range(len(code))]
    return store, np.concatenate(vectors), keys


def test_code_vector_search_is_exact(
    stored: tuple[Store, np.ndarray, list[tuple[str, int]]], rng: np.random.Generator
) -> None:
    store, vectors, keys = stored
    code_by_key = {(s, i): text for s, examples in EXAMPLES.items() for i, (text, _) in enumerate(examples)}
    for query in unit_vectors(rng, 4):
        hits = store.code_vector_search(query, 2)
        assert [hit.code for hit in hits] == [code_by_key[key] for key in brute_force(vectors, keys, query, 2)]  # type: ignore[index]
        for hit in hits:
            assert hit.score == hit.similarity and hit.keyword_score is None
        filtered = store.code_vector_search(query, 5, "a.example.com")
        assert len(filtered) == 2 and {hit.source_id for hit in filtered} == {"a.example.com"}
    assert store.code_vector_search(unit_vectors(rng, 1)[0], 0) == []


def test_code_keyword_search(stored: tuple[Store, np.ndarray, list[tuple[str, int]]]) -> None:
    store = stored[0]
    [hit] = store.code_keyword_search("os.scandir", 5)
    assert hit.summary == "List a directory with os.scandir"
    assert (hit.url, hit.source_id, hit.language, hit.headings) == (
        "https://a.example.com/examples",
        "a.example.com",
        "python",
        "## Examples",
    )
    assert hit.keyword_score is not None and hit.keyword_score > 0 and hit.score == hit.keyword_score
    assert [h.summary for h in store.code_keyword_search("httpx client", 5)] == ["Fetch a page with httpx"]
    assert [h.source_id for h in store.code_keyword_search("neighbours", 5)] == ["b.example.com"]
    assert store.code_keyword_search("neighbours", 5, "a.example.com") == []


def test_code_examples_are_replaced_with_their_page(
    stored: tuple[Store, np.ndarray, list[tuple[str, int]]], rng: np.random.Generator
) -> None:
    store = stored[0]
    store.write_page(page_write("https://a.example.com/examples", "a.example.com", ["prose"], unit_vectors(rng, 1)))
    assert store.code_keyword_search("scandir", 5) == []
    assert {hit.source_id for hit in store.code_vector_search(unit_vectors(rng, 1)[0], 10)} == {"b.example.com"}
    assert [s.code_examples for s in store.list_sources()] == [0, 1]


def test_mismatched_code_embeddings_raise(store: Store, rng: np.random.Generator) -> None:
    store.ensure_source("a.example.com", MODEL, DIM)
    code = [code_example("https://a.example.com/x", 0, "pass", "nothing")]
    vectors, code_vectors = unit_vectors(rng, 1), unit_vectors(rng, 2)
    write = page_write("https://a.example.com/x", "a.example.com", ["p"], vectors, code=code, code_vectors=code_vectors)
    with pytest.raises(ValueError):
        store.write_page(write)
    assert store.get_page("https://a.example.com/x") is None
