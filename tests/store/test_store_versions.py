"""Versions in the stores: one URL stored per source key, filters by a set of keys, deleting some keys (both
backends)."""

from __future__ import annotations

import numpy as np
from store_helpers import DIM, MODEL, code_example, page_write, unit_vectors

from crawlrag.sources.versions import source_key
from crawlrag.store.base import Store

SITE = "docs.example.com"
URL = "https://docs.example.com/guide/intro"
V1, V2 = source_key(SITE, "1.0"), source_key(SITE, "2.0")


def _two_versions(store: Store, rng: np.random.Generator) -> np.ndarray:
    vectors = unit_vectors(rng, 2)
    for key, text, vector in ((V1, "install with pip one", vectors[:1]), (V2, "install with uv two", vectors[1:])):
        store.ensure_source(key, MODEL, DIM)
        code = [code_example(URL, 0, f"print({key!r})", f"example of {key}")]
        store.write_page(page_write(URL, key, [text], vector, code=code, code_vectors=vector))
    return vectors


def test_one_url_is_one_page_per_version(store: Store, rng: np.random.Generator) -> None:
    _two_versions(store, rng)

    one, two = store.get_page(URL, V1), store.get_page(URL, V2)
    assert one is not None and two is not None
    assert (one.source_id, two.source_id) == (V1, V2)
    assert store.page_markdown(URL, V1) == "install with pip one"
    assert store.page_markdown(URL, V2) == "install with uv two"
    assert store.get_page(URL, SITE) is None  # `latest` was never crawled
    assert store.get_page(URL) is not None  # any version: the most recently crawled
    store.touch_page(URL, V1)
    assert store.get_page(URL) == store.get_page(URL, V1)
    dates = store.page_dates([(V1, URL), (V2, URL), (SITE, URL)])
    assert set(dates) == {(V1, URL), (V2, URL)}


def test_sources_know_their_site_and_version(store: Store, rng: np.random.Generator) -> None:
    _two_versions(store, rng)
    store.ensure_source("other.example.com", MODEL, DIM)

    listed = {(info.source_id, info.site, info.version, info.pages, info.chunks) for info in store.list_sources()}
    assert listed == {
        (V1, SITE, "1.0", 1, 1),
        (V2, SITE, "2.0", 1, 1),
        ("other.example.com", "other.example.com", "latest", 0, 0),
    }
    assert {(v.source_id, v.site, v.version) for v in store.source_versions()} == {
        (V1, SITE, "1.0"),
        (V2, SITE, "2.0"),
        ("other.example.com", "other.example.com", "latest"),
    }


def test_searches_filter_by_a_set_of_source_keys(store: Store, rng: np.random.Generator) -> None:
    vectors = _two_versions(store, rng)

    def contents(hits: list) -> set[str]:
        return {hit.content for hit in hits}

    assert contents(store.vector_search(vectors[0], 10, [V1])) == {"install with pip one"}
    assert contents(store.vector_search(vectors[0], 10, [V2])) == {"install with uv two"}
    assert contents(store.vector_search(vectors[0], 10, [V1, V2])) == {"install with pip one", "install with uv two"}
    assert store.vector_search(vectors[0], 10, []) == []
    assert store.vector_search(vectors[0], 10, ["unknown"]) == []
    assert contents(store.keyword_search("install", 10, {V2})) == {"install with uv two"}
    assert contents(store.keyword_search("install", 10, (V1, V2))) == {"install with pip one", "install with uv two"}
    assert store.keyword_search("install", 10, ()) == []
    assert {hit.code for hit in store.code_vector_search(vectors[1], 10, [V2])} == {f"print({V2!r})"}
    assert {hit.code for hit in store.code_keyword_search("example", 10, [V1])} == {f"print({V1!r})"}
    # a lone key is one key, never a collection of characters
    assert contents(store.keyword_search("install", 10, V1)) == {"install with pip one"}


def test_deleting_one_version_leaves_the_other(store: Store, rng: np.random.Generator) -> None:
    vectors = _two_versions(store, rng)

    deleted = store.delete_sources([V1, "never.example.com"])

    assert set(deleted) == {V1}
    counts = deleted[V1]
    assert (counts.site, counts.version, counts.pages, counts.chunks, counts.code_examples) == (SITE, "1.0", 1, 1, 1)
    assert store.get_page(URL, V1) is None and store.get_page(URL, V2) is not None
    assert [hit.source_id for hit in store.vector_search(vectors[0], 10)] == [V2]
    assert {hit.content for hit in store.keyword_search("install", 10)} == {"install with uv two"}
    assert {hit.source_id for hit in store.code_keyword_search("example", 10)} == {V2}
    assert [info.source_id for info in store.list_sources()] == [V2]
    assert store.delete_sources([V1]) == {}
    assert store.delete_source(V2) == 1
    assert store.list_sources() == [] and store.vector_search(vectors[1], 10) == []
