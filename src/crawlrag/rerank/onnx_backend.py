"""Scoring with ONNX Runtime and `tokenizers`: no torch import at serving time, ~0.1 s to start.

Export, quantisation and the cache entry are `crawlrag.onnx_export`'s (shared with the embedder); this module
turns a cross-encoder's logits into the same scores sentence-transformers' CrossEncoder gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crawlrag.onnx_export import (
    OnnxExportError,
    OnnxPrecision,
    cache_entry,
    ensure_exported,
    feed,
    open_session,
    open_tokenizer,
    read_meta,
)
from crawlrag.rerank.backends import Pair, scores_to_list
from crawlrag.rerank.errors import ModelLoadError

_ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": "identity", "Tanh": "tanh"}


def activation_of(config: dict[str, Any]) -> str:
    """The activation sentence-transformers' CrossEncoder applies, so both backends give the same scores."""
    saved = (config.get("sentence_transformers") or {}).get("activation_fn") or config.get(
        "sbert_ce_default_activation_function"
    )
    # sentence-transformers imports only torch.* activations from a config (others need trust_remote_code).
    if isinstance(saved, str) and saved.startswith("torch."):
        name = saved.rsplit(".", 1)[-1]
        if name not in _ACTIVATIONS:
            raise ModelLoadError(
                f"activation {saved} is not supported by the onnx backend; use RERANKING_BACKEND=torch"
            )
        return _ACTIVATIONS[name]
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    return "sigmoid" if labels == 1 else "identity"


class OnnxBackend:
    name = "onnx"
    device = "cpu"

    def __init__(self, session: Any, tokenizer: Any, inputs: list[str], activation: str, precision: str) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = inputs
        self._activation = activation
        self.precision = precision
        self._unpadded: Any = None

    @classmethod
    def load(cls, model_dir: Path, cache_root: Path, *, precision: OnnxPrecision, max_length: int) -> OnnxBackend:
        entry = cache_entry(model_dir, cache_root, "sequence-classification")
        try:
            file = ensure_exported(model_dir, entry, "sequence-classification", precision, optimize=True)
        except OnnxExportError as exc:
            raise ModelLoadError(str(exc)) from exc
        meta = read_meta(entry)
        activation = activation_of(meta["config"])
        return cls(open_session(file), open_tokenizer(entry, meta, max_length), meta["inputs"], activation, precision)

    def token_lengths(self, pairs: Sequence[Pair]) -> list[int]:
        """Tokens of each pair after truncation: what the worker sizes batches by."""
        if self._unpadded is None:
            from tokenizers import Tokenizer

            self._unpadded = Tokenizer.from_str(self._tokenizer.to_str())
            self._unpadded.no_padding()
        return [len(e.ids) for e in self._unpadded.encode_batch(list(pairs))]

    def predict(self, pairs: Sequence[Pair]) -> list[float]:
        if not pairs:
            return []
        encodings = self._tokenizer.encode_batch(list(pairs))
        logits = np.asarray(self._session.run(["logits"], feed(encodings, self._inputs))[0], dtype=np.float32)
        return scores_to_list(activate(logits, self._activation).astype(np.float64))

    def close(self) -> None:
        self._session = None


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    # float32 throughout, as torch computes it, so scores match the torch backend to ~1e-7.
    if activation == "sigmoid":
        with np.errstate(over="ignore"):  # exp overflows to inf for very negative logits: the score is then 0
            return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float32)
    if activation == "tanh":
        return np.tanh(logits)
    return logits
