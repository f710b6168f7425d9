"""Sentence-transformers embeddings with ONNX Runtime: the same vectors as the torch embedder, faster on CPU.

The export and the int8 recipe are `crawlrag.onnx_export`'s (shared with the reranker). The model folder's
sentence-transformers modules say how to pool (mean or CLS), whether vectors are normalised, and how many
tokens the model reads (`max_seq_length`); a model with other modules is refused with a clear error, and
EMBEDDING_BACKEND=torch handles it. Texts are embedded in length-bucketed batches under a token budget, so
short chunks do not pay for the padding of long ones.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crawlrag.batching import plan_batches
from crawlrag.embeddings.base import EmbeddingError
from crawlrag.onnx_export import (
    OnnxPrecision,
    cache_entry,
    ensure_exported,
    feed,
    model_length,
    open_session,
    open_tokenizer,
    read_meta,
)
from crawlrag.tokens import TokenCounter, counter_for_model_dir

log = logging.getLogger(__name__)

# Padded tokens per batch: large enough that ONNX Runtime's kernels run at full speed, small enough that the
# activations of one batch stay in cache-friendly sizes on a CPU.
BATCH_TOKENS = 8192


def read_pooling(model_dir: Path) -> tuple[str, bool, int | None]:
    """(pooling mode, normalise?, max_seq_length) from a sentence-transformers folder; raises if unsupported."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise EmbeddingError(f"{model_dir} is not a sentence-transformers model (no modules.json)")
    modules = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text())]
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]):
        raise EmbeddingError(
            f"the onnx embedder handles Transformer + Pooling [+ Normalize] models, not {modules}; "
            "use EMBEDDING_BACKEND=torch"
        )
    pooling_dir = next(
        (model_dir / m["path"] for m in json.loads(modules_file.read_text()) if m["type"].endswith("Pooling")), None
    )
    config = json.loads((pooling_dir / "config.json").read_text()) if pooling_dir else {}
    modes = [key for key, on in config.items() if key.startswith("pooling_mode_") and on]
    if modes not in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"]):
        raise EmbeddingError(f"the onnx embedder handles mean or CLS pooling, not {modes}; use EMBEDDING_BACKEND=torch")
    st_config = model_dir / "sentence_bert_config.json"
    max_seq = json.loads(st_config.read_text()).get("max_seq_length") if st_config.is_file() else None
    return modes[0].removeprefix("pooling_mode_"), "Normalize" in modules, max_seq


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls_token":
        return np.asarray(hidden[:, 0], dtype=np.float32)
    weights = mask[..., None].astype(np.float32)
    return np.asarray((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9), dtype=np.float32)


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class OnnxEmbedder:
    """Embedder on an ONNX export of a local sentence-transformers model; loads on first use or `load()`."""

    def __init__(
        self,
        model_name: str,
        model_dir: Path,
        cache_dir: Path,
        *,
        precision: OnnxPrecision = "int8",
        batch_size: int = 64,
        batch_tokens: int = BATCH_TOKENS,
        reason: str = "set by EMBEDDING_BACKEND",
    ) -> None:
        self._model_name = model_name
        self._model_dir = model_dir
        self._cache_dir = cache_dir
        self._precision = precision
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        self._reason = reason
        self._lock = threading.Lock()
        self._state: tuple[Any, Any, Any, list[str], str] | None = None  # session, tokenizer, counter, inputs, pool
        self._dimension: int | None = None
        self._max_tokens: int | None = None
        self._load_seconds: float | None = None
        self._error: str | None = None
        self.load_count = 0

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def dimension(self) -> int:
        self.load()
        assert self._dimension is not None
        return self._dimension

    @property
    def max_input_tokens(self) -> int | None:
        self.load()
        return self._max_tokens

    def token_counter(self) -> TokenCounter:
        return counter_for_model_dir(self._model_dir)

    def load(self) -> None:
        if self._state is not None:
            return
        with self._lock:
            if self._state is None:
                started = time.perf_counter()
                try:
                    self._state = self._open()
                except Exception as exc:
                    self._error = f"could not load embedding model {self._model_name!r} with onnx: {exc}"
                    raise EmbeddingError(self._error) from exc
                self._error = None
                self.load_count += 1
                self._load_seconds = time.perf_counter() - started

    def _open(self) -> tuple[Any, Any, Any, list[str], str]:
        mode, _, max_seq = read_pooling(self._model_dir)
        entry = cache_entry(self._model_dir, self._cache_dir, "feature-extraction")
        file = ensure_exported(self._model_dir, entry, "feature-extraction", self._precision)
        meta = read_meta(entry)
        self._max_tokens = model_length(meta, max_seq or meta.get("max_positions") or 512)
        self._dimension = int(meta["config"]["hidden_size"])
        tokenizer = open_tokenizer(entry, meta, self._max_tokens)
        from tokenizers import Tokenizer

        lengths = Tokenizer.from_str(tokenizer.to_str())
        lengths.no_padding()
        return open_session(file), tokenizer, lengths, list(meta["inputs"]), mode

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        assert self._state is not None and self._dimension is not None
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        session, tokenizer, unpadded, inputs, mode = self._state
        lengths = [len(e.ids) for e in unpadded.encode_batch(list(texts))]
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for batch in plan_batches(lengths, max_pairs=self._batch_size, max_tokens=self._batch_tokens):
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            hidden = session.run(None, feed(encodings, inputs))[0]
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            out[batch] = pool(np.asarray(hidden, dtype=np.float32), mask, mode)
        # Normalised whatever the model's modules say: the Embedder contract is unit vectors (as LocalEmbedder).
        return normalize(out)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        """Nothing to release: the session runs in this process and holds no connection."""

    def status(self) -> dict[str, Any]:
        return {
            "provider": "local",
            "backend": "onnx",
            "model": self._model_name,
            "loaded": self._state is not None,
            "device": "cpu",
            "precision": self._precision,
            "precision_reason": self._reason,
            "max_input_tokens": self._max_tokens,
            "load_seconds": self._load_seconds,
            "load_count": self.load_count,
            "error": self._error,
        }
