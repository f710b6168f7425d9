"""What a refresh needs from a store: recorded crawls, the schedule, and removing pages (both backends)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from store_helpers import DIM, MODEL, code_example, page_write, unit_vectors

from crawlrag.store.base import Store


def test_recorded_crawls_keep_the_latest_options_per_url_and_set_the_interval(store: Store) -> None:
    store.ensure_source("a.example.com", MODEL, DIM)
    store.ensure_source("b.example.com", MODEL, DIM)
    store.record_crawl("a.example.com", "https://a.example.com/", {"max_depth": 1})
    store.record_crawl("a.example.com", "https://a.example.com/api/", {"max_depth": 2}, refresh_interval_hours=12)
    store.record_crawl("a.example.com", "https://a.example.com/", {"max_depth": 3})  # again, new options
    schedule = {entry.source_id: entry for entry in store.refresh_schedule()}
    store.record_crawl("a.example.com", "https://a.example.com/", {"max_depth": 3})  # no interval: kept

    crawls = store.source_crawls("a.example.com")
    assert [(crawl.url, crawl.options) for crawl in crawls] == [
        ("https://a.example.com/", {"max_depth": 3}),
        ("https://a.example.com/api/", {"max_depth": 2}),
    ]
    assert store.source_crawls("b.example.com") == []
    assert schedule["a.example.com"].interval_hours == 12 and schedule["b.example.com"].interval_hours is None
    assert {entry.source_id: entry.interval_hours for entry in store.refresh_schedule()}["a.example.com"] == 12
    assert schedule["a.example.com"].refreshed_at is None and schedule["a.example.com"].last_seen is None

    store.mark_refreshed("a.example.com")
    refreshed = {entry.source_id: entry for entry in store.refresh_schedule()}["a.example.com"]
    assert refreshed.refreshed_at is not None and refreshed.refreshed_at.tzinfo is not None
    assert refreshed.last_seen == refreshed.refreshed_at

    store.delete_source("a.example.com")  # its recorded crawls go with it
    assert store.source_crawls("a.example.com") == []


def test_delete_pages_removes_chunks_code_vectors_and_keyword_rows_of_that_source_only(
    open_store: Callable[[], Store], rng: np.random.Generator
) -> None:
    store = open_store()
    for source in ("a.example.com", "b.example.com"):
        store.ensure_source(source, MODEL, DIM)
    vectors = unit_vectors(rng, 4)
    gone, kept = "https://a.example.com/gone", "https://a.example.com/kept"
    other = "https://b.example.com/gone"
    example = code_example(gone, 0, "def vanished_helper():\n    return 1", "A helper that vanishes")
    store.write_page(
        page_write(
            gone,
            "a.example.com",
            ["the zebrafinch section"],
            vectors[:1],
            code=[example],
            code_vectors=vectors[3:4],
        )
    )
    store.write_page(page_write(kept, "a.example.com", ["the kept section"], vectors[1:2]))
    store.write_page(page_write(other, "b.example.com", ["another zebrafinch section"], vectors[2:3]))
    second = open_store()  # a second process, whose in-memory vectors must follow too
    assert {hit.url for hit in second.vector_search(vectors[0], 10)} == {gone, kept, other}

    removed = store.delete_pages("a.example.com", [gone, other, "https://a.example.com/never-stored"])

    assert removed == 1  # the other source's page of that URL list is not touched
    assert store.delete_pages("a.example.com", []) == 0
    assert store.get_page(gone) is None and store.get_page(kept) is not None and store.get_page(other) is not None
    assert sorted(store.source_page_urls("a.example.com")) == [kept]
    for current in (store, second):
        assert {hit.url for hit in current.keyword_search("zebrafinch", 10)} == {other}
        assert {hit.url for hit in current.vector_search(vectors[0], 10)} == {kept, other}
        assert current.code_keyword_search("vanished_helper", 10) == []
        assert current.code_vector_search(vectors[3], 10) == []
    info = {source.source_id: source for source in store.list_sources()}
    assert (info["a.example.com"].pages, info["a.example.com"].chunks, info["a.example.com"].code_examples) == (1, 1, 0)
