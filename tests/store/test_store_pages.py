"""Pages: reads, atomic replacement, failed writes, touch, embedding reuse and concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from store_helpers import DIM, MODEL, page_write, unit_vectors

from crawlrag.store.base import PageWrite, Store, StoreError

URL = "https://docs.example.com/guide"
SOURCE = "docs.example.com"


@pytest.fixture
def source(store: Store) -> str:
    store.ensure_source(SOURCE, MODEL, DIM)
    return SOURCE


def _chunk_texts(store: Store, query: np.ndarray) -> list[str]:
    return sorted(hit.content for hit in store.vector_search(query, 100))


def test_unknown_page(store: Store) -> None:
    assert store.get_page(URL) is None
    assert store.page_markdown(URL) is None
    store.touch_page(URL, SOURCE)  # no error for a page never stored


def test_write_and_read_page(store: Store, source: str, rng: np.random.Generator) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    write = page_write(URL, source, ["first chunk", "second chunk"], unit_vectors(rng, 2), title="Guide", etag='"v1"')
    store.write_page(write)

    page = store.get_page(URL)
    assert page is not None
    assert (page.url, page.source_id, page.title, page.chunk_count, page.etag) == (URL, SOURCE, "Guide", 2, '"v1"')
    assert page.content_hash == write.page.content_hash
    assert page.last_modified is None
    assert before <= page.crawled_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert store.page_markdown(URL) == "first chunk\n\nsecond chunk"


def test_touch_page_moves_crawled_at(store: Store, source: str, rng: np.random.Generator) -> None:
    store.write_page(page_write(URL, source, ["text"], unit_vectors(rng, 1)))
    first = store.get_page(URL)
    time.sleep(0.01)
    store.touch_page(URL, SOURCE)
    second = store.get_page(URL)
    assert first is not None and second is not None
    assert second.crawled_at > first.crawled_at
    assert second.content_hash == first.content_hash


def test_replacing_a_page_leaves_no_stale_or_duplicate_chunks(
    store: Store, source: str, rng: np.random.Generator
) -> None:
    query = unit_vectors(rng, 1)[0]
    store.write_page(page_write(URL, source, [f"old walrus {i}" for i in range(5)], unit_vectors(rng, 5)))
    store.write_page(page_write(URL, source, ["new narwhal 0", "new narwhal 1"], unit_vectors(rng, 2)))
    store.write_page(page_write(URL, source, ["new narwhal 0", "new narwhal 1"], unit_vectors(rng, 2)))

    assert _chunk_texts(store, query) == ["new narwhal 0", "new narwhal 1"]
    assert store.keyword_search("walrus", 10) == []
    assert len(store.keyword_search("narwhal", 10)) == 2
    page = store.get_page(URL)
    assert page is not None and page.chunk_count == 2
    assert store.list_sources()[0].chunks == 2


def test_mismatched_lengths_raise_and_keep_the_previous_version(
    store: Store, source: str, rng: np.random.Generator
) -> None:
    query = unit_vectors(rng, 1)[0]
    original = page_write(URL, source, ["kept chunk a", "kept chunk b"], unit_vectors(rng, 2))
    store.write_page(original)
    broken = page_write(URL, source, ["lost 1", "lost 2", "lost 3"], unit_vectors(rng, 3))
    broken = PageWrite(broken.page, broken.chunks, broken.embeddings[:2], broken.embed_hashes)

    with pytest.raises(ValueError, match="same length"):
        store.write_page(broken)

    stored = store.get_page(URL)
    assert stored is not None and stored.content_hash == original.page.content_hash
    assert _chunk_texts(store, query) == ["kept chunk a", "kept chunk b"]


def test_failure_inside_the_transaction_keeps_the_previous_version(
    store: Store, source: str, rng: np.random.Generator
) -> None:
    query = unit_vectors(rng, 1)[0]
    original = page_write(URL, source, ["kept chunk a", "kept chunk b"], unit_vectors(rng, 2))
    store.write_page(original)
    # Two chunks with one index break the (page, chunk index) uniqueness after the old rows were deleted and
    # the page row rewritten, so the whole transaction must roll back.
    broken = page_write(URL, source, ["lost 1", "lost 2"], unit_vectors(rng, 2))
    duplicate = [broken.chunks[0], broken.chunks[0]]
    broken = PageWrite(broken.page, duplicate, broken.embeddings, broken.embed_hashes)

    with pytest.raises((StoreError, sqlite3.Error)):
        store.write_page(broken)

    stored = store.get_page(URL)
    assert stored is not None and stored.content_hash == original.page.content_hash
    assert stored.chunk_count == 2
    assert _chunk_texts(store, query) == ["kept chunk a", "kept chunk b"]
    assert store.keyword_search("lost", 10) == []
    assert store.list_sources()[0].chunks == 2


def test_writing_a_page_of_an_unknown_source_fails_and_stores_nothing(store: Store, rng: np.random.Generator) -> None:
    with pytest.raises((StoreError, sqlite3.Error)):
        store.write_page(page_write(URL, "nowhere.example.com", ["orphan"], unit_vectors(rng, 1)))
    assert store.get_page(URL) is None


def test_page_without_chunks(store: Store, source: str) -> None:
    store.write_page(page_write(URL, source, [], np.zeros((0, DIM), dtype=np.float32)))
    page = store.get_page(URL)
    assert page is not None and page.chunk_count == 0


def test_text_with_nul_and_emoji_is_stored(store: Store, source: str, rng: np.random.Generator) -> None:
    store.write_page(page_write(URL, source, ["nul\x00byte and 🦀 crab"], unit_vectors(rng, 1), title="T\x00 🦀"))
    assert store.get_page(URL) is not None
    [hit] = store.keyword_search("crab", 5)
    assert "🦀" in hit.content


def test_embeddings_for_reuses_stored_vectors(store: Store, source: str, rng: np.random.Generator) -> None:
    write = page_write(URL, source, ["alpha", "beta", "gamma"], unit_vectors(rng, 3))
    store.write_page(write)
    wanted = [write.embed_hashes[2], "missing", write.embed_hashes[0], write.embed_hashes[0]]

    found = store.embeddings_for(wanted, MODEL)

    assert set(found) == {write.embed_hashes[0], write.embed_hashes[2]}
    np.testing.assert_allclose(found[write.embed_hashes[0]], write.embeddings[0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(found[write.embed_hashes[2]], write.embeddings[2], rtol=0, atol=1e-7)
    assert found[write.embed_hashes[0]].dtype == np.float32
    assert store.embeddings_for(wanted, "another-model") == {}
    assert store.embeddings_for([], MODEL) == {}


def test_concurrent_writers_of_one_page_never_mix_versions(
    open_store: Callable[[], Store], rng: np.random.Generator
) -> None:
    # Two store instances stand for two server processes.
    stores = [open_store(), open_store()]
    stores[0].ensure_source(SOURCE, MODEL, DIM)
    versions = [
        page_write(URL, SOURCE, [f"version{v} part{i}" for i in range(6)], unit_vectors(rng, 6)) for v in range(8)
    ]
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for _ in range(3):
                stores[index % 2].write_page(versions[index])
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in range(len(versions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    texts = _chunk_texts(stores[1], unit_vectors(rng, 1)[0])
    assert len(texts) == 6
    assert len({text.split()[0] for text in texts}) == 1, texts
    page = stores[0].get_page(URL)
    assert page is not None and page.chunk_count == 6
