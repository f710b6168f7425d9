"""Sources: creation, embedding-model checks, summaries, counts and deletion (both backends)."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import DIM, MODEL, code_example, page_write, unit_vectors

from crawlrag.store.base import EmbeddingMismatchError, Store


def test_ensure_source_is_idempotent(store: Store) -> None:
    store.ensure_source("docs.example.com", MODEL, DIM)
    store.ensure_source("docs.example.com", MODEL, DIM)

    assert store.source_embedding("docs.example.com") == (MODEL, DIM)
    assert store.source_embedding("unknown.example.com") is None
    [info] = store.list_sources()
    assert (info.source_id, info.embedding_model, info.embedding_dim) == ("docs.example.com", MODEL, DIM)
    assert (info.pages, info.chunks, info.words, info.code_examples) == (0, 0, 0, 0)
    assert info.created_at is not None and info.created_at.tzinfo is not None
    assert info.last_crawled is None


@pytest.mark.parametrize(("model", "dim"), [("another-model", DIM), (MODEL, DIM * 2)])
def test_ensure_source_refuses_another_embedding(store: Store, model: str, dim: int) -> None:
    store.ensure_source("docs.example.com", MODEL, DIM)

    with pytest.raises(EmbeddingMismatchError, match=r"docs\.example\.com.*EMBEDDING_MODEL"):
        store.ensure_source("docs.example.com", model, dim)

    assert store.source_embedding("docs.example.com") == (MODEL, DIM)


def test_set_source_summary(store: Store) -> None:
    store.ensure_source("a.example.com", MODEL, DIM)
    store.set_source_summary("a.example.com", "Docs about A.")

    assert store.list_sources()[0].summary == "Docs about A."


def test_list_sources_counts(store: Store, rng: np.random.Generator) -> None:
    for source in ("b.example.com", "a.example.com"):
        store.ensure_source(source, MODEL, DIM)
    store.write_page(page_write("https://a.example.com/1", "a.example.com", ["one two", "three"], unit_vectors(rng, 2)))
    example = code_example("https://a.example.com/2", 0, "print('hi')", "Prints hi")
    store.write_page(
        page_write(
            "https://a.example.com/2",
            "a.example.com",
            ["four five six"],
            unit_vectors(rng, 1),
            code=[example],
            code_vectors=unit_vectors(rng, 1),
        )
    )

    a, b = store.list_sources()
    assert [a.source_id, b.source_id] == ["a.example.com", "b.example.com"]
    # words count the page markdown: "one two\n\nthree" and "four five six"
    assert (a.pages, a.chunks, a.words, a.code_examples) == (2, 3, 6, 1)
    assert a.last_crawled is not None
    assert (b.pages, b.chunks, b.words, b.code_examples) == (0, 0, 0, 0)


def test_delete_source_removes_everything_of_that_source_only(store: Store, rng: np.random.Generator) -> None:
    vectors = {source: unit_vectors(rng, 3) for source in ("a.example.com", "b.example.com")}
    for source, rows in vectors.items():
        store.ensure_source(source, MODEL, DIM)
        example = code_example(f"https://{source}/p", 0, "import zebra", "zebra import")
        store.write_page(
            page_write(
                f"https://{source}/p",
                source,
                ["zebra alpha", "zebra beta", "zebra gamma"],
                rows,
                code=[example],
                code_vectors=unit_vectors(rng, 1),
            )
        )

    assert store.delete_source("a.example.com") == 1
    assert store.delete_source("a.example.com") == 0

    assert [s.source_id for s in store.list_sources()] == ["b.example.com"]
    assert store.get_page("https://a.example.com/p") is None
    assert store.page_markdown("https://a.example.com/p") is None
    hits = store.vector_search(vectors["a.example.com"][0], 10)
    assert {hit.source_id for hit in hits} == {"b.example.com"} and len(hits) == 3
    assert {hit.source_id for hit in store.keyword_search("zebra", 10)} == {"b.example.com"}
    assert store.vector_search(vectors["a.example.com"][0], 10, "a.example.com") == []
    assert {hit.source_id for hit in store.code_keyword_search("zebra", 10)} == {"b.example.com"}
    assert {hit.source_id for hit in store.code_vector_search(unit_vectors(rng, 1)[0], 10)} == {"b.example.com"}
    assert store.embeddings_for([], MODEL) == {}
    # The source can be indexed again from scratch.
    store.ensure_source("a.example.com", MODEL, DIM)
    assert store.source_embedding("a.example.com") == (MODEL, DIM)
