"""The retrieval benchmark: its metrics, and one end-to-end run on a tiny corpus."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("eval_retrieval", BENCH / "eval_retrieval.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_metrics() -> None:
    result = bench.metrics([1, 3, None, 7, 12])
    assert result["recall@1"] == pytest.approx(1 / 5)
    assert result["recall@5"] == pytest.approx(2 / 5)
    assert result["recall@10"] == pytest.approx(3 / 5)
    assert result["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 5)
    assert bench.metrics([])["mrr@10"] == 0


def test_first_relevant_rank_judges_by_page_path() -> None:
    urls = ["http://127.0.0.1:9/library/os.html", "http://127.0.0.1:9/library/csv.html", "http://h/library/csv.html"]
    assert bench.first_relevant_rank(urls, frozenset({"library/csv.html"})) == 2
    assert bench.first_relevant_rank(urls, frozenset({"library/json.html"})) is None
    assert bench.page_path("http://h/docs/a/b.html", "/docs/") == "a/b.html"


def test_percentile() -> None:
    assert bench.percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert bench.percentile([], 0.95) == 0.0


CORPUS = {
    "index.html": "<h1>Tiny docs</h1><p>Start here.</p><a href='csv.html'>csv</a> <a href='os.html'>os</a>"
    " <a href='json.html'>json</a>",
    "csv.html": "<main><h1>csv</h1><p>DictReader maps each row to a dict keyed by the header row of the file.</p>"
    "</main>",
    "os.html": "<main><h1>os</h1><p>os.scandir returns an iterator of DirEntry objects for a directory.</p></main>",
    "json.html": "<main><h1>json</h1><p>json.loads parses a JSON document into Python objects.</p></main>",
}
QUERIES = [
    {"q": "read rows as dictionaries", "relevant": ["csv.html"], "kind": "semantic"},
    {"q": "os.scandir", "relevant": ["os.html"], "kind": "keyword"},
    {"q": "parse a JSON string", "relevant": ["json.html"], "kind": "semantic"},
]


def test_benchmark_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, body in CORPUS.items():
        (docs / name).write_text(f"<html><head><title>{name}</title></head><body>{body}</body></html>")
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in QUERIES))
    monkeypatch.setenv("BROWSER", "never")
    db = tmp_path / "bench.db"
    args = [
        "--docs",
        str(docs),
        "--queries",
        str(queries),
        "--db",
        str(db),
        "--modes",
        "vector,keyword,hybrid,upstream",
    ]
    output = bench.main([*args, "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(output))
    assert printed["queries"] == 3 and printed["pages_indexed"] == 4
    assert set(printed["modes"]) == {"vector", "keyword", "hybrid", "upstream"}
    hybrid = printed["modes"]["hybrid"]
    assert hybrid["recall@5"] == 1.0 and hybrid["mrr@10"] > 0.5
    assert set(hybrid["by_kind"]) == {"semantic", "keyword"}
    assert hybrid["p50_ms"] > 0

    # The second run reuses the indexed database and prints the table.
    bench.main(args)
    table = capsys.readouterr().out
    assert "3 queries, 4 pages indexed" in table and "upstream" in table
