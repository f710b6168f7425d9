"""Scoring with ONNX Runtime and `tokenizers`: no torch import at serving time, ~0.1 s to start.

The model is exported once (torch + transformers are needed only for that) into a cache entry keyed by the
model directory and its files, then optionally quantised to int8. Each entry holds model.onnx,
model.int8.onnx, tokenizer.json and meta.json; files are written under temporary names and renamed, so a
crashed or concurrent export never leaves a half-written file that a later start would trust.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crawlrag.model_loading import MODEL_BUILD_LOCK
from crawlrag.rerank.backends import Pair, scores_to_list
from crawlrag.rerank.errors import ModelLoadError

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the export recipe changes, so entries made by the old recipe are not reused
OPSET = 17
_KEY_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model")
_ENCODING_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
_ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": "identity", "Tanh": "tanh"}


def cache_entry(model_dir: Path, cache_root: Path) -> Path:
    """The cache directory for `model_dir`: changes whenever the model's files or the export recipe change."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}-opset{OPSET}:{model_dir.resolve()}".encode())
    for file in sorted(model_dir.iterdir()):
        if file.is_file() and file.suffix in _KEY_SUFFIXES:
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    # HF cache snapshots are named by commit; the repo folder above ("models--org--name") reads better.
    label = next((part for part in reversed(model_dir.parts) if part.startswith("models--")), model_dir.name)
    safe = re.sub(r"[^\w.-]+", "_", label)[-60:]
    return cache_root / f"{safe}-{digest.hexdigest()[:16]}"


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


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def export(model_dir: Path, entry: Path, *, quantize: bool) -> None:
    """Create the entry's files that are missing (the fp32 export, then the int8 model if asked for)."""
    entry.mkdir(parents=True, exist_ok=True)
    fp32 = entry / "model.onnx"
    if not fp32.exists():
        _export_fp32(model_dir, entry)
    int8 = entry / "model.int8.onnx"
    if quantize and not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Per-channel int8 weights keep ranking agreement with fp32 (Spearman ≈ 0.99, see bench/rerank.py).
        _write_atomic(int8, lambda tmp: quantize_dynamic(fp32, tmp, per_channel=True, weight_type=QuantType.QInt8))


def _export_fp32(model_dir: Path, entry: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    log.info("exporting %s to ONNX in %s (once per model)", model_dir, entry)
    # Eager attention: SDPA traces into a graph the TorchScript exporter handles poorly.
    with MODEL_BUILD_LOCK:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, attn_implementation="eager", local_files_only=True
        ).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    backend_tokenizer = getattr(tokenizer, "backend_tokenizer", None)
    if backend_tokenizer is None:
        raise ModelLoadError(f"{model_dir} has no fast tokenizer; the onnx backend needs one (tokenizer.json)")
    sample = tokenizer(["query"], ["a passage"], return_tensors="pt", padding=True, truncation=True)
    # The exporter passes inputs positionally, so they must follow forward()'s parameter order.
    names = [name for name in inspect.signature(model.forward).parameters if name in sample]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}

    def run_export(tmp: Path) -> None:
        with torch.no_grad():
            torch.onnx.export(
                model,
                tuple(sample[name] for name in names),
                str(tmp),
                input_names=names,
                output_names=["logits"],
                dynamic_axes={**axes, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )

    config = json.loads((model_dir / "config.json").read_text())
    meta = {
        "inputs": names,
        "activation": activation_of(config),
        "max_positions": config.get("max_position_embeddings"),
        "pad_id": tokenizer.pad_token_id,
        "pad_token": tokenizer.pad_token,
        "source": str(model_dir),
    }
    _write_atomic(entry / "tokenizer.json", lambda tmp: backend_tokenizer.save(str(tmp)))
    _write_atomic(entry / "meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
    # model.onnx goes last: its presence is what marks the entry complete.
    _write_atomic(entry / "model.onnx", run_export)


class OnnxBackend:
    name = "onnx"
    device = "cpu"

    def __init__(self, session: Any, tokenizer: Any, inputs: list[str], activation: str, precision: str) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = inputs
        self._activation = activation
        self.precision = precision

    @classmethod
    def load(cls, model_dir: Path, cache_root: Path, *, quantize: bool, max_length: int) -> OnnxBackend:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        entry = cache_entry(model_dir, cache_root)
        file = entry / ("model.int8.onnx" if quantize else "model.onnx")
        if not file.exists():
            export(model_dir, entry, quantize=quantize)
        meta = json.loads((entry / "meta.json").read_text())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(entry / "tokenizer.json"))
        length = min(max_length, meta.get("max_positions") or max_length)
        # The same truncation and padding sentence-transformers asks of the HF tokenizer.
        tokenizer.enable_truncation(length, strategy="longest_first")
        tokenizer.enable_padding(pad_id=meta["pad_id"], pad_token=meta["pad_token"])
        return cls(session, tokenizer, meta["inputs"], meta["activation"], "int8" if quantize else "float32")

    def predict(self, pairs: Sequence[Pair]) -> list[float]:
        if not pairs:
            return []
        encodings = self._tokenizer.encode_batch(list(pairs))
        feed = {
            name: np.array([getattr(e, _ENCODING_FIELDS[name]) for e in encodings], dtype=np.int64)
            for name in self._inputs
        }
        logits = np.asarray(self._session.run(["logits"], feed)[0], dtype=np.float32)
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
