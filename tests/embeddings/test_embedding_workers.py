"""Document batches in worker processes: the same vectors as in-process, and a broken pool never fails a call."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder, build_embedder
from crawlrag.embeddings.local import worker_count
from crawlrag.embeddings.workers import EmbeddingWorkers, WorkerPoolError, WorkerSpec

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [f"Section {i}: the function number {i} reads a file and returns {i * 3} lines of text." for i in range(40)]


def wait_ready(pool: EmbeddingWorkers, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not pool.ready():
        assert pool.error is None, pool.error
        assert time.monotonic() < deadline, "the embedding workers did not load the model"
        time.sleep(0.1)


def test_worker_count_defaults() -> None:
    assert worker_count(0, "cpu") == 0
    assert worker_count(3, "cpu") == 3
    assert worker_count(None, "cuda") == 0  # one process drives a GPU
    assert worker_count(4, "cuda:0") == 0
    assert worker_count(None, "cpu") in (0, 2)
    assert Settings(_env_file=None).embedding_workers is None  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Settings(_env_file=None, embedding_workers=-1)  # type: ignore[call-arg]


def test_factory_passes_the_setting() -> None:
    embedder = build_embedder(Settings(_env_file=None, embedding_workers=0))  # type: ignore[call-arg]
    assert isinstance(embedder, LocalEmbedder)
    embedder.load()
    assert embedder.status()["workers"] == 0


def test_workers_give_the_in_process_vectors() -> None:
    embedder = LocalEmbedder(MODEL, precision="float32", workers=2)
    try:
        expected = embedder.embed_documents(TEXTS)  # starts the workers; this call runs in-process
        pool = embedder._pool
        assert pool is not None and pool.count == 2
        wait_ready(pool)
        assert embedder.status()["workers"] == 2 and embedder.status()["workers_error"] is None
        got = embedder.embed_documents(TEXTS)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert float(np.abs(got - expected).max()) < 1e-5
        assert embedder.status()["workers_texts"] == len(TEXTS)
        # A query, or a call too small to split, stays in-process.
        assert np.allclose(embedder.embed_query(TEXTS[0]), expected[0], atol=1e-5)
        assert np.allclose(embedder.embed_documents(TEXTS[:3]), expected[:3], atol=1e-5)
    finally:
        embedder.close()
    assert embedder._pool is not None and not embedder._pool.ready()  # closed: never restarted
    assert np.allclose(embedder.embed_documents(TEXTS), expected, atol=1e-5)


def test_closed_before_loading_it_starts_no_workers() -> None:
    # What the embedder autotune does with the candidates it measures: their speed is one process's.
    embedder = LocalEmbedder(MODEL, precision="float32", workers=2)
    embedder.close()
    assert embedder.embed_documents(TEXTS).shape == (len(TEXTS), 384)
    assert embedder._pool is None and embedder.status()["workers"] == 0


def test_a_dead_worker_falls_back_to_in_process() -> None:
    embedder = LocalEmbedder(MODEL, precision="float32", workers=2)
    try:
        expected = embedder.embed_documents(TEXTS)
        pool = embedder._pool
        assert pool is not None
        wait_ready(pool)
        process, _ = pool._workers[0]
        process.kill()
        process.join(10)
        got = embedder.embed_documents(TEXTS)  # the pool fails, the call is answered in-process
        assert float(np.abs(got - expected).max()) < 1e-5
        error = embedder.status()["workers_error"]
        assert error is not None and "embedding worker" in error
        assert not pool.ready()  # the pool stays down rather than failing again on every call
        with pytest.raises(WorkerPoolError):
            pool.embed(TEXTS)
    finally:
        embedder.close()


def test_a_model_that_cannot_load_in_a_worker_is_reported(tmp_path: object) -> None:
    pool = EmbeddingWorkers(WorkerSpec("/nonexistent/model/folder", "float32", 64, 1), 1)
    try:
        deadline = time.monotonic() + 120
        while pool.error is None and time.monotonic() < deadline:
            assert not pool.ready()
            time.sleep(0.1)
        assert pool.error is not None and "could not load the model" in pool.error
    finally:
        pool.close()
