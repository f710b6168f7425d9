"""End to end with a local peer standing in for Ollama: crawl, search, switch models, reindex, rerank with TEI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from provider_peers import Peer
from sitegen import SiteInfo, build_docs_site, serve_site
from typer.testing import CliRunner

from crawlrag.cli import app
from crawlrag.config import load_settings
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler, CrawlRequest
from crawlrag.pipeline.indexer import Indexer
from crawlrag.rerank import RemoteReranker


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SiteInfo, str]]:
    info = build_docs_site(tmp_path / "site")
    with serve_site(info.root) as base_url:
        yield info, base_url


@pytest.fixture
def env(tmp_path: Path, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crawlrag.db'}",
        "ALLOW_PRIVATE_NETWORK": "true",
        "EMBEDDING_PROVIDER": "openai",
        "OPENAI_BASE_URL": peer.url + "/v1",
        "EMBEDDING_MODEL": "nomic-embed-text",
        "EMBEDDING_MAX_RETRIES": "1",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_crawl_search_switch_model_and_reindex(site: tuple[SiteInfo, str], env: dict[str, str], peer: Peer) -> None:
    _, base = site
    code, out, err = run(env, "crawl", base + "/", "--max-depth", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["pages_stored"] > 3 and not any("embedding" in f["reason"] for f in report["failures"])

    code, out, err = run(env, "search", "install the client", "--json", "--mode", "vector")
    assert code == 0, err
    assert json.loads(out)["results"]

    other = env | {"EMBEDDING_MODEL": "other-embed"}
    code, _, err = run(other, "search", "install the client", "--json")
    assert code == 2 and "nomic-embed-text" in err and "crawlrag reindex" in err
    code, _, err = run(other, "crawl", base + "/", "--max-depth", "0")
    assert code == 1 and "was indexed with nomic-embed-text" in err and "reindex" in err

    embedded_before = len(peer.calls("/v1/embeddings"))
    code, out, err = run(other, "reindex", "--json")
    assert code == 0, err
    reindexed = json.loads(out)
    assert reindexed["model"] == "other-embed" and reindexed["dimension"] == 32 and reindexed["chunks"] > 0
    assert len(peer.calls("/v1/embeddings")) > embedded_before
    assert all(call["model"] == "other-embed" for call in peer.calls("/v1/embeddings")[embedded_before:])

    code, out, err = run(other, "search", "install the client", "--json", "--mode", "vector")
    assert code == 0, err
    assert json.loads(out)["results"]
    code, out, _ = run(other, "sources", "--json")
    assert {s["embedding_model"] for s in json.loads(out)["sources"]} == {"other-embed"}
    code, _, err = run(other, "reindex")
    assert code == 0 and "already uses other-embed" in err


def test_a_failed_embedding_fails_the_crawl_once_never_zero_vectors(
    site: tuple[SiteInfo, str], env: dict[str, str], peer: Peer
) -> None:
    _, base = site
    peer.fail("/v1/embeddings", "zero")  # the dimension probe gets an all-zero vector...
    peer.fail("/v1/embeddings", *["500"] * 50)  # ...and then the server fails for a while
    code, out, _ = run(env, "crawl", base + "/", "--max-depth", "1", "--json")
    job = json.loads(out)["job"]
    # The embedder is broken for every page: one error for the job, not one failure per page.
    assert code == 1 and job["status"] == "failed" and "all-zero" in job["error"]
    assert job["progress"]["chunks_stored"] == 0 and job["progress"]["pages_failed"] == 0


async def test_llm_contexts_and_tei_reranking(
    site: tuple[SiteInfo, str], env: dict[str, str], peer: Peer, tmp_path: Path
) -> None:
    _, base = site
    settings = load_settings(
        _env_file=None,
        **{key.lower(): value for key, value in env.items()},
        llm_provider="openai",
        model_choice="chat-model",
        use_contextual_embeddings=True,
        use_agentic_rag=True,
        code_min_chars=20,
        use_reranking=True,
        reranking_provider="tei",
        reranking_url=peer.url,
    )
    peer.fail("/v1/chat/completions", "500", "500", "500")  # the first chunk falls back, the crawl goes on
    context = AppContext.create(settings)
    try:
        async with Crawler(settings) as crawler:
            report = await Indexer(settings, context.store, context.embedder, crawler).run(
                CrawlRequest(url=base + "/", max_depth=1)
            )
        assert report.progress.stored > 0 and all(f.reason == "HTTP 404" for f in report.failures)
        assert report.llm["calls"] > 1 and report.llm["fallbacks"] >= 1
        embedded = [text for call in peer.calls("/v1/embeddings") for text in call["input"]]
        assert any(text.startswith("LLM context: ") for text in embedded)
        assert isinstance(context.reranker, RemoteReranker)
        context.reranker.start()
        response = await context.search.search("install the client", match_count=3)
        assert response.reranking_applied, response.reranking_reason
        assert not any(hit.content.startswith("LLM context") for hit in response.results)  # stored raw
        status = context.reranker.status()
        assert status["state"] == "ready" and status["requests"] == 1 and status["latency_ms"]["p95"] is not None
        sources = context.store.list_sources()
        assert sources and sources[0].summary.startswith("LLM context")
    finally:
        context.close()
