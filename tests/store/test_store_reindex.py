"""Re-embedding a source in place: read its texts, swap in vectors of another model (and dimension) atomically."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from store_helpers import DIM, MODEL, code_example, page_write, unit_vectors

from crawlrag.store.base import EmbeddingMismatchError, SourceEmbeddings, Store, StoreError

NEW_DIM = 8


def seed(store: Store, rng: np.random.Generator, source: str = "a.example.com") -> None:
    store.ensure_source(source, MODEL, DIM)
    for page in range(2):
        url = f"https://{source}/p{page}"
        code = [code_example(url, 0, f"print({page})", f"example {page}")]
        texts = [f"alpha chunk {page}", f"beta chunk {page}"]
        store.write_page(
            page_write(url, source, texts, unit_vectors(rng, 2), code=code, code_vectors=unit_vectors(rng, 1))
        )


def new_vectors(store: Store, source: str, rng: np.random.Generator) -> SourceEmbeddings:
    texts = store.source_texts(source)
    return SourceEmbeddings(
        source,
        [c.chunk_id for c in texts.chunks],
        [f"h{c.chunk_id}" for c in texts.chunks],
        unit_vectors(rng, len(texts.chunks), NEW_DIM),
        [e.example_id for e in texts.code_examples],
        unit_vectors(rng, len(texts.code_examples), NEW_DIM),
    )


def test_replace_embeddings_switches_model_and_dimension(
    store: Store, open_store: Callable[[], Store], rng: np.random.Generator
) -> None:
    seed(store, rng)
    texts = store.source_texts("a.example.com")
    assert [(c.url, c.chunk_index, c.content) for c in texts.chunks][:2] == [
        ("https://a.example.com/p0", 0, "alpha chunk 0"),
        ("https://a.example.com/p0", 1, "beta chunk 0"),
    ]
    assert [e.summary for e in texts.code_examples] == ["example 0", "example 1"]
    update = new_vectors(store, "a.example.com", rng)
    store.replace_embeddings("new-model", NEW_DIM, [update])

    assert store.source_embedding("a.example.com") == ("new-model", NEW_DIM)
    for index, content in ((0, "alpha chunk 0"), (3, "beta chunk 1")):
        hits = store.vector_search(update.embeddings[index], 1, "a.example.com")
        assert hits[0].content == content and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    code_hits = store.code_vector_search(update.code_embeddings[1], 1)
    assert code_hits[0].summary == "example 1"
    assert {hit.content for hit in store.keyword_search("alpha", 5)} == {"alpha chunk 0", "alpha chunk 1"}
    reused = store.embeddings_for(list(update.embed_hashes), "new-model")
    assert len(reused) == 4 and all(len(v) == NEW_DIM for v in reused.values())
    # Another process (a second store on the same database) searches the new vectors.
    other = open_store()
    assert other.vector_search(update.embeddings[2], 1)[0].content == "alpha chunk 1"
    assert {s.source_id: s.chunks for s in other.list_sources()} == {"a.example.com": 4}


def test_replace_embeddings_refuses_stale_ids_and_other_dimensions(store: Store, rng: np.random.Generator) -> None:
    seed(store, rng, "a.example.com")
    seed(store, rng, "b.example.com")
    update = new_vectors(store, "a.example.com", rng)
    with pytest.raises(EmbeddingMismatchError, match=r"b\.example\.com"):
        store.replace_embeddings("new-model", NEW_DIM, [update])
    stale = SourceEmbeddings(
        update.source_id, update.chunk_ids[:-1], update.embed_hashes[:-1], update.embeddings[:-1],
        update.code_ids, update.code_embeddings,
    )  # fmt: skip
    both = [stale, new_vectors(store, "b.example.com", rng)]
    with pytest.raises(StoreError, match="changed while it was re-embedded"):
        store.replace_embeddings("new-model", NEW_DIM, both)
    # Nothing changed: the failed attempts rolled back.
    assert store.source_embedding("a.example.com") == (MODEL, DIM)
    assert len(store.vector_search(unit_vectors(rng, 1)[0], 10)) == 8
    store.replace_embeddings("new-model", NEW_DIM, [update, both[1]])
    assert store.source_embedding("b.example.com") == ("new-model", NEW_DIM)
    with pytest.raises(ValueError, match="not 9-dimensional"):
        store.replace_embeddings("new-model", NEW_DIM + 1, [update])
