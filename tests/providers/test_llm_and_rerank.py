"""The LLM enricher's fallbacks and the remote rerankers (TEI and Cohere shapes) against a local peer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from provider_peers import Peer

from crawlrag.config import Settings
from crawlrag.llm import ChatClient, Enricher
from crawlrag.models import CodeExample
from crawlrag.remote import RetryPolicy
from crawlrag.rerank import LocalReranker, RemoteReranker, RerankState, RerankUnavailable, build_reranker

CHAT = "/v1/chat/completions"
EXAMPLE = CodeExample("u", 0, "python", "print('hi')", "python example: Hello", "before", "after", "## Hello")


def enricher(peer: Peer, sleeps: list[float], clock: Callable[[], float] = lambda: 0.0) -> Enricher:
    client = ChatClient("chat-model", peer.url + "/v1", retry=RetryPolicy(max_retries=1, sleep=sleeps.append))
    return Enricher(client, concurrency=2, pause_seconds=60, clock=clock)


def test_enricher_uses_the_llm_and_caches_chunk_contexts(peer: Peer, sleeps: list[float]) -> None:
    llm = enricher(peer, sleeps)
    contexts = llm.chunk_contexts("# Page\n\nalpha beta gamma", ["alpha beta", "gamma delta"])
    assert contexts == ["LLM context: alpha beta", "LLM context: gamma delta"]
    assert llm.chunk_contexts("# Page\n\nalpha beta gamma", ["alpha beta"]) == ["LLM context: alpha beta"]
    assert len(peer.calls(CHAT)) == 2  # the second page visit was served from the cache
    assert llm.code_summary(EXAMPLE).startswith("LLM context")
    assert llm.source_summary("docs", "Docs", "words here", "fallback").startswith("LLM context")
    assert peer.calls(CHAT)[0]["model"] == "chat-model"
    assert llm.status()["fallbacks"] == 0


def test_rate_limits_fall_back_with_a_reason_and_pause_the_llm(peer: Peer, sleeps: list[float]) -> None:
    now = [0.0]
    llm = enricher(peer, sleeps, clock=lambda: now[0])
    peer.fail(CHAT, "429", "429")
    assert llm.code_summary(EXAMPLE) == EXAMPLE.summary
    assert llm.source_summary("docs", "Docs", "text", "the fallback") == "the fallback"
    assert len(peer.calls(CHAT)) == 2  # paused after the rate limit: the second helper made no call
    status = llm.status()
    assert status["paused"] and status["fallbacks"] == 2
    assert "HTTP 429" in status["fallback_reasons"][0] and "paused" in status["fallback_reasons"][1]
    now[0] = 61.0
    assert llm.chunk_contexts("doc", ["chunk"]) == ["LLM context: chunk"]


def test_malformed_answers_fall_back(peer: Peer, sleeps: list[float]) -> None:
    llm = enricher(peer, sleeps)
    peer.fail(CHAT, "malformed", "malformed")
    assert llm.chunk_contexts("doc", ["chunk"]) == [None]
    assert "malformed" in llm.status()["fallback_reasons"][0]


@pytest.fixture
def rerank_settings(make_settings: Callable[..., Settings], peer: Peer) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {"use_reranking": True, "reranking_provider": "tei", "reranking_url": peer.url}
        return make_settings(**(values | overrides))

    return build


# The keys search and /health rely on, as the local reranker reports them.
HEALTH_KEYS = ("enabled", "state", "model", "fallback_used", "reason", "device", "precision", "backend",
               "load_seconds", "warmup_seconds", "validated", "requests", "errors", "latency_ms", "rss_mb",
               "load_count")  # fmt: skip
PASSAGES = ["the mitochondrion makes energy", "berlin population is large", "berlin berlin population people"]


@pytest.mark.parametrize("provider", ["tei", "cohere"])
async def test_remote_reranker_scores_and_reports_health(
    rerank_settings: Callable[..., Settings], peer: Peer, provider: str
) -> None:
    reranker = build_reranker(rerank_settings(reranking_provider=provider, reranking_batch_size=2))
    assert isinstance(reranker, RemoteReranker)
    try:
        assert reranker.status()["state"] == "not_started"
        assert await reranker.wait_ready(5)
        scores = await reranker.rerank("how many people live in berlin", PASSAGES)
        assert scores[2] > scores[1] > scores[0]
        path = "/rerank" if provider == "tei" else "/v1/rerank"
        bodies = peer.calls(path)
        assert len(bodies) == 3  # the health check, then two batches of at most two
        if provider == "tei":
            assert bodies[1] == {"query": "how many people live in berlin", "texts": PASSAGES[:2],
                                 "truncate": True, "raw_scores": False}  # fmt: skip
        else:
            assert bodies[1]["documents"] == PASSAGES[:2] and bodies[1]["top_n"] == 2 and "model" in bodies[1]
        status = reranker.status()
        assert status["state"] == "ready" and status["validated"] is True
        assert status["requests"] == 1 and status["errors"] == 0 and status["load_count"] == 1
        assert status["latency_ms"]["p50"] is not None and status["backend"] == provider
        local = LocalReranker(rerank_settings(reranking_provider="local")).status()
        assert set(HEALTH_KEYS) <= set(local) and set(HEALTH_KEYS) <= set(status)
    finally:
        reranker.close()
    assert reranker.status()["state"] == "disabled"


async def test_failures_at_query_time_fall_back(rerank_settings: Callable[..., Settings], peer: Peer) -> None:
    reranker = RemoteReranker(rerank_settings(), retry=RetryPolicy(max_retries=0))
    assert await reranker.wait_ready(5)
    peer.fail("/rerank", "malformed")
    with pytest.raises(RerankUnavailable, match="malformed"):
        await reranker.rerank("q", ["a"])
    assert reranker.status()["errors"] == 1
    reranker.close()
    slow = RemoteReranker(rerank_settings(reranking_timeout_seconds=0.2), retry=RetryPolicy(max_retries=0))
    assert await slow.wait_ready(5)
    peer.stall_seconds = 0.6
    peer.fail("/rerank", "timeout")
    with pytest.raises(RerankUnavailable, match="timed out"):
        await slow.rerank("q", ["a"])
    slow.close()


async def test_validation_failure_leaves_the_reranker_failed(
    rerank_settings: Callable[..., Settings], peer: Peer
) -> None:
    peer.fail("/rerank", "500", "500", "500", "500")
    reranker = RemoteReranker(rerank_settings(reranking_load_retries=1), retry=RetryPolicy(sleep=lambda s: None))
    assert not await reranker.wait_ready(5)
    status = reranker.status()
    assert status["state"] == RerankState.FAILED and "HTTP 500" in status["reason"]
    assert status["validated"] is False
    with pytest.raises(RerankUnavailable, match="not ready"):
        await reranker.rerank("q", ["a"])
    reranker.close()
