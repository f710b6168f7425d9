"""The OpenAI-compatible embedder against a local peer: batching, retries, timeouts and malformed answers."""

from __future__ import annotations

import numpy as np
import pytest
from provider_peers import Peer
from pydantic import SecretStr

from crawlrag.embeddings import EmbeddingError, OpenAICompatibleEmbedder
from crawlrag.remote import RetryPolicy

PATH = "/v1/embeddings"


def make(peer: Peer, sleeps: list[float], **options: object) -> OpenAICompatibleEmbedder:
    values: dict[str, object] = {
        "batch_size": 2,
        "concurrency": 2,
        "timeout_seconds": 0.3,
        "retry": RetryPolicy(max_retries=2, backoff_seconds=0.01, sleep=sleeps.append),
    }
    values.update(options)
    return OpenAICompatibleEmbedder("nomic-embed-text", peer.url + "/v1", **values)  # type: ignore[arg-type]


def test_dimension_comes_from_the_first_response_and_vectors_are_unit_length(peer: Peer, sleeps: list[float]) -> None:
    embedder = make(peer, sleeps)
    assert embedder.dimension == 64
    texts = ["alpha beta", "beta gamma", "gamma delta", "delta", "epsilon"]
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (5, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batches of two, answered out of order by the peer, come back in input order.
    assert [len(call["input"]) for call in peer.calls(PATH)[1:]] == [2, 2, 1]
    assert np.allclose(embedder.embed_query("alpha beta"), vectors[0], atol=1e-6)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[4])
    assert "authorization" not in peer.headers(PATH)[0]  # local servers get no key
    assert embedder.status()["dimension"] == 64


def test_rate_limits_honour_retry_after(peer: Peer, sleeps: list[float]) -> None:
    embedder = make(peer, sleeps, api_key=SecretStr("sk-test"))
    peer.fail(PATH, "429")
    assert embedder.embed_documents(["one"]).shape == (1, 64)
    assert sleeps == [2.0]
    assert peer.headers(PATH)[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("failure", ["timeout", "malformed", "500"])
def test_transient_failures_are_retried(peer: Peer, sleeps: list[float], failure: str) -> None:
    embedder = make(peer, sleeps)
    peer.fail(PATH, failure)
    assert embedder.embed_documents(["one two"]).shape == (1, 64)
    assert len(peer.calls(PATH)) == 2 and len(sleeps) == 1


def test_persistent_failures_raise_after_the_retries(peer: Peer, sleeps: list[float]) -> None:
    embedder = make(peer, sleeps)
    peer.fail(PATH, "malformed", "malformed", "malformed")
    with pytest.raises(EmbeddingError, match=r"malformed JSON.*after 3 attempts"):
        embedder.embed_documents(["one"])
    assert embedder.status()["failures"] == 1 and "malformed" in embedder.status()["error"]


def test_client_errors_are_not_retried(peer: Peer, sleeps: list[float]) -> None:
    embedder = make(peer, sleeps)
    peer.fail(PATH, "401")
    with pytest.raises(EmbeddingError, match="HTTP 401"):
        embedder.load()
    assert len(peer.calls(PATH)) == 1 and sleeps == []
    with pytest.raises(EmbeddingError, match="HTTP 404"):
        OpenAICompatibleEmbedder("no-such-model", peer.url + "/v1").load()


def test_wrong_dimensions_and_zero_vectors_are_refused(peer: Peer, sleeps: list[float]) -> None:
    embedder = make(peer, sleeps)
    embedder.load()
    peer.fail(PATH, "wrong_dim")
    with pytest.raises(EmbeddingError, match="32-dimension embeddings, expected 64"):
        embedder.embed_documents(["one"])
    peer.fail(PATH, "zero")
    with pytest.raises(EmbeddingError, match="all-zero"):
        embedder.embed_documents(["one"])
    requested = make(peer, sleeps, dimensions=16)
    with pytest.raises(EmbeddingError, match="expected 16"):
        requested.load()
    assert peer.calls(PATH)[-1]["dimensions"] == 16


def test_unreachable_server(sleeps: list[float]) -> None:
    embedder = OpenAICompatibleEmbedder(
        "nomic-embed-text", "http://127.0.0.1:9/v1", retry=RetryPolicy(max_retries=1, sleep=sleeps.append)
    )
    with pytest.raises(EmbeddingError, match="cannot reach"):
        embedder.embed_query("x")
    assert len(sleeps) == 1
