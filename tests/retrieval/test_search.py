"""SearchService over a real SQLite store and the real embedding model."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crawlrag.chunking import chunk_markdown
from crawlrag.code_examples import extract_code_examples
from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder
from crawlrag.models import Page, content_hash
from crawlrag.pipeline.indexer import embedding_text
from crawlrag.rerank import RerankUnavailable
from crawlrag.search import SearchInputError, SearchService
from crawlrag.store import PageWrite, StoreError, open_store

CODE = "\n".join(
    [
        "import csv",
        "with open('names.csv', newline='') as f:",
        "    reader = csv.DictReader(f)",
        "    for row in reader:",
    ]
    + [f"        print(row['first_name'], row['last_name'], {i})" for i in range(12)]
)

PAGES = {
    "http://docs.test/csv.html": (
        "csv — CSV File Reading and Writing",
        "# csv\n\nThe csv module implements classes to read and write tabular data in CSV format.\n\n"
        "## DictReader\n\nCreate an object that operates like a regular reader but maps the information in each "
        "row to a dict whose keys are given by the optional fieldnames parameter, read from the header row.\n\n"
        f"```python\n{CODE}\n```\n\n"
        "## Dialects\n\n" + "Dialects describe delimiters and quoting rules for CSV files. " * 30,
    ),
    "http://docs.test/os.html": (
        "os — Miscellaneous operating system interfaces",
        "# os\n\n## os.scandir\n\nReturn an iterator of os.DirEntry objects corresponding to the entries in the "
        "directory given by path.\n\n## Environment\n\nos.environ is a mapping object of the environment.",
    ),
    "http://docs.test/json.html": (
        "json — JSON encoder and decoder",
        "# json\n\nSerialize obj as a JSON formatted stream; json.loads parses a string into Python objects.",
    ),
    "http://docs.test/cmdline.html": (
        "Command line and environment",
        "# Environment variables\n\nPYTHONDONTWRITEBYTECODE: if this is set, Python won't write .pyc files.",
    ),
}


class FakeReranker:
    """A protocol peer that scores passages by how many query words they contain."""

    enabled = True

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    def start(self) -> None: ...

    async def wait_ready(self, timeout: float) -> bool:
        return True

    async def rerank(self, query: str, passages: Any) -> list[float]:
        self.calls += 1
        if self.fail:
            raise RerankUnavailable("model crashed")
        words = query.lower().split()
        return [float(sum(word in p.lower() for word in words)) for p in passages]

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "state": "ready"}

    def close(self) -> None: ...


@pytest.fixture
def service(
    make_settings: Callable[..., Settings], embedder: LocalEmbedder, database_url: str
) -> Iterator[SearchService]:
    settings = make_settings(use_agentic_rag=True, code_min_chars=100, database_url=database_url)
    store = open_store(settings)
    store.ensure_source("docs.test", embedder.model_name, embedder.dimension)
    for url, (title, markdown) in PAGES.items():
        chunks = chunk_markdown(markdown, url=url, title=title, chunk_size=300)
        texts = [embedding_text(chunk, contextual=True) for chunk in chunks]
        examples = extract_code_examples(markdown, url=url, min_chars=100)
        store.write_page(
            PageWrite(
                Page(url=url, source_id="docs.test", title=title, markdown=markdown),
                chunks,
                embedder.embed_documents(texts),
                [content_hash(t) for t in texts],
                examples,
                embedder.embed_documents([f"{e.summary}\n\n{e.code}" for e in examples]),
            )
        )
    yield SearchService(settings, store, embedder, None)
    store.close()


async def test_hybrid_finds_the_right_page(service: SearchService) -> None:
    response = await service.search("read rows as dictionaries with a header")
    assert response.search_mode == "hybrid"
    assert response.results[0].url == "http://docs.test/csv.html"
    assert response.reranking_applied is False
    assert "USE_RERANKING" in (response.reranking_reason or "")


@pytest.mark.parametrize(
    ("query", "url"),
    [("os.scandir", "http://docs.test/os.html"), ("PYTHONDONTWRITEBYTECODE", "http://docs.test/cmdline.html")],
)
async def test_identifier_queries(service: SearchService, query: str, url: str) -> None:
    for mode in ("keyword", "hybrid"):
        response = await service.search(query, mode=mode)  # type: ignore[arg-type]
        assert response.results[0].url == url


async def test_per_page_limit(service: SearchService) -> None:
    response = await service.search("CSV dialects delimiters quoting", match_count=10)
    per_page: dict[str, int] = {}
    for hit in response.results:
        per_page[hit.url] = per_page.get(hit.url, 0) + 1
    assert max(per_page.values()) <= service.settings.max_chunks_per_page
    assert len(per_page) > 1


async def test_hybrid_carries_both_scores(service: SearchService) -> None:
    hit = (await service.search("csv DictReader header")).results[0]
    assert hit.similarity is not None and hit.keyword_score is not None


async def test_source_filter(service: SearchService) -> None:
    with pytest.raises(SearchInputError, match=r"unknown source 'elsewhere\.test'; available sources: docs\.test"):
        await service.search("csv", source_id="elsewhere.test")
    response = await service.search("csv", source_id="docs.test")
    assert response.results and response.versions == {"docs.test": "latest"}
    assert all(hit.version == "latest" and hit.indexed_at is not None for hit in response.results)


@pytest.mark.parametrize(
    ("query", "count"), [("", 5), ("   ", 5), ("x" * 5000, 5), ("ok", 0), ("ok", -1), ("ok", 10**9)]
)
async def test_bad_input_is_refused(service: SearchService, query: str, count: int) -> None:
    with pytest.raises(SearchInputError):
        await service.search(query, match_count=count)


async def test_reranker_reorders_candidates(service: SearchService) -> None:
    reranker = FakeReranker()
    service.reranker = reranker
    response = await service.search("environment variables pyc files", match_count=3)
    assert response.reranking_applied and reranker.calls == 1
    assert response.results[0].url == "http://docs.test/cmdline.html"
    scores = [hit.rerank_score for hit in response.results]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


async def test_reranker_failure_degrades_to_fused_results(service: SearchService) -> None:
    service.reranker = FakeReranker(fail=True)
    response = await service.search("read rows as dictionaries with a header")
    assert not response.reranking_applied
    assert response.reranking_reason == "model crashed"
    assert response.results[0].url == "http://docs.test/csv.html"
    assert all(hit.rerank_score is None for hit in response.results)


async def test_code_examples_search(service: SearchService) -> None:
    response = await service.search_code("read rows from a CSV file into dictionaries")
    [hit] = response.results
    assert "csv.DictReader" in hit.code and hit.language == "python"
    assert hit.summary.startswith("python example: DictReader")


class BarrierStore:
    """The real store, except that vector and keyword search each wait until the other has started."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._barrier = threading.Barrier(2, timeout=60)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def vector_search(self, *args: Any) -> Any:
        self._barrier.wait()
        return self._store.vector_search(*args)

    def keyword_search(self, *args: Any) -> Any:
        self._barrier.wait()
        return self._store.keyword_search(*args)


async def test_hybrid_runs_both_sides_at_once(service: SearchService) -> None:
    # Run one after the other, the first side would wait at the barrier until it broke.
    service.store = BarrierStore(service.store)  # type: ignore[assignment]
    response = await service.search("read rows as dictionaries with a header")
    assert response.results[0].url == "http://docs.test/csv.html"
    assert {"vector", "keyword"} <= set(response.timings_ms)


class FailingKeywordStore(BarrierStore):
    def keyword_search(self, *args: Any) -> Any:
        raise StoreError("the keyword index is unreadable")

    def vector_search(self, *args: Any) -> Any:
        return self._store.vector_search(*args)


async def test_a_failing_side_raises_its_own_error(service: SearchService) -> None:
    service.store = FailingKeywordStore(service.store)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="unreadable"):
        await service.search("csv", mode="hybrid")
