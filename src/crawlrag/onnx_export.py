"""ONNX export, int8 quantisation and session set-up shared by the reranker and the embedder.

A model is exported once (torch + transformers are needed only for that) into a cache entry keyed by the model
directory, its files, the model kind and the export recipe. An entry holds model.onnx (fp32), the int8 files
asked for, tokenizer.json and meta.json. Files are written under temporary names and renamed, so a crashed or
concurrent export never leaves a half-written file that a later start would trust.

Precisions:
- `float32`: the export itself; scores and vectors equal torch fp32 to ~1e-6.
- `int8`: dynamic int8 (per-channel weights) for the projections whose inputs quantise well, with the
  sensitive layers kept in fp32: each FFN's down-projection (its input, the GELU output, has the outliers
  that per-tensor activation scales clip) and every Gemm (pooler and classifier: one vector per sequence, so
  they cost nothing). On the reranker benchmark this keeps Spearman ≥ 0.99 against torch fp32 / 512 tokens
  where quantising everything gave 0.987.
- `int8-full`: every MatMul/Gemm in int8; fastest, ranking drifts (kept for `auto` to measure).

`optimize=True` (the reranker asks for it) first rewrites the fp32 export with ONNX Runtime's transformer
optimizer: attention, LayerNorm+residual and bias+GELU become fused kernels. For a sequence classifier, whose
head reads only the first token, the last layer then computes its output for that token alone (its attention
still reads every token's keys and values): ~1/7 of the work, exact. Each rewrite is checked against the plain
export on a padded sample batch and dropped if it changes the outputs, so an encoder the optimizer does not
know falls back to the plain graph. The int8 files are quantised from the optimised graph.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crawlrag.model_loading import MODEL_BUILD_LOCK

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when the export recipe changes, so entries made by the old recipe are not reused
OPSET = 17
ModelKind = Literal["sequence-classification", "feature-extraction"]
OnnxPrecision = Literal["float32", "int8", "int8-full"]
ONNX_PRECISIONS: tuple[OnnxPrecision, ...] = ("float32", "int8", "int8-full")
MODEL_FILES: dict[OnnxPrecision, str] = {
    "float32": "model.onnx",
    "int8": "model.int8.onnx",
    "int8-full": "model.int8-full.onnx",
}
OPTIMIZED_FILES: dict[OnnxPrecision, str] = {
    "float32": "model.opt.onnx",
    "int8": "model.opt.int8.onnx",
    "int8-full": "model.opt.int8-full.onnx",
}
_OPTIMIZE_FAILED = "model.opt.failed"  # marker: the optimiser did not give the same outputs; use the plain graph
_KEY_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model")
_ENCODING_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


class OnnxExportError(RuntimeError):
    """The model cannot be exported or run with ONNX Runtime; the message says why."""


def cache_entry(model_dir: Path, cache_root: Path, kind: ModelKind = "sequence-classification") -> Path:
    """The cache directory for `model_dir`: changes whenever the model's files or the export recipe change."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}-opset{OPSET}-{kind}:{model_dir.resolve()}".encode())
    for file in sorted(model_dir.iterdir()):
        if file.is_file() and file.suffix in _KEY_SUFFIXES:
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    # HF cache snapshots are named by commit; the repo folder above ("models--org--name") reads better.
    label = next((part for part in reversed(model_dir.parts) if part.startswith("models--")), model_dir.name)
    safe = re.sub(r"[^\w.-]+", "_", label)[-60:]
    return cache_root / f"{safe}-{digest.hexdigest()[:16]}"


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def ensure_exported(
    model_dir: Path, entry: Path, kind: ModelKind, precision: OnnxPrecision, *, optimize: bool = False
) -> Path:
    """The entry's model file for `precision`, exporting and quantising what is missing first.

    With `optimize`, the file comes from the optimised graph (module docstring) when the optimiser gives the
    same outputs as the plain export, else from the plain export.
    """
    entry.mkdir(parents=True, exist_ok=True)
    fp32 = entry / MODEL_FILES["float32"]
    if not fp32.exists():
        _export_fp32(model_dir, entry, kind)
    files, source = MODEL_FILES, fp32
    if optimize:
        from crawlrag.onnx_optimize import ensure_optimized

        optimized = ensure_optimized(entry, kind, fp32, entry / OPTIMIZED_FILES["float32"], entry / _OPTIMIZE_FAILED)
        if optimized is not None:
            files, source = OPTIMIZED_FILES, optimized
    target = entry / files[precision]
    if not target.exists():
        quantize(source, target, keep_sensitive=precision == "int8")
    return target


def sensitive_nodes(model: Any) -> list[str]:
    """Nodes `int8` keeps in fp32: FFN down-projections (weight taller than wide) and all Gemms.

    Found by shape, not by name, so the rule holds for any encoder the exporter names differently.
    """
    from onnx import numpy_helper

    shapes = {init.name: numpy_helper.to_array(init).shape for init in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Gemm":
            keep.append(node.name)
        elif node.op_type == "MatMul":
            shape = next((shapes[name] for name in node.input if name in shapes), None)
            if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
                keep.append(node.name)
    return keep


def quantize(fp32: Path, target: Path, *, keep_sensitive: bool) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = sensitive_nodes(onnx.load(str(fp32))) if keep_sensitive else []
    log.info("quantising %s to int8 (%d sensitive nodes kept in fp32)", fp32, len(exclude))
    # Shape inference cannot type the outputs of fused (com.microsoft) ops; they are all float.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    write_atomic(
        target,
        lambda tmp: quantize_dynamic(
            fp32, tmp, per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=exclude, extra_options=extra
        ),
    )


def _load_for_export(model_dir: Path, kind: ModelKind) -> Any:
    from transformers import AutoModel, AutoModelForSequenceClassification

    factory = AutoModelForSequenceClassification if kind == "sequence-classification" else AutoModel
    # Eager attention: SDPA traces into a graph the TorchScript exporter handles poorly.
    with MODEL_BUILD_LOCK:
        return factory.from_pretrained(model_dir, attn_implementation="eager", local_files_only=True).eval()


def _export_fp32(model_dir: Path, entry: Path, kind: ModelKind) -> None:
    import torch
    from transformers import AutoTokenizer

    log.info("exporting %s to ONNX in %s (once per model)", model_dir, entry)
    model = _load_for_export(model_dir, kind)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    backend_tokenizer = getattr(tokenizer, "backend_tokenizer", None)
    if backend_tokenizer is None:
        raise OnnxExportError(f"{model_dir} has no fast tokenizer; the onnx backend needs one (tokenizer.json)")
    if kind == "sequence-classification":
        sample = tokenizer(["query"], ["a passage"], return_tensors="pt", padding=True, truncation=True)
        output, output_axes = "logits", {0: "batch"}
    else:
        sample = tokenizer(["a passage"], return_tensors="pt", padding=True, truncation=True)
        output, output_axes = "last_hidden_state", {0: "batch", 1: "sequence"}
    # The exporter passes inputs positionally, so they must follow forward()'s parameter order.
    names = [name for name in inspect.signature(model.forward).parameters if name in sample]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}

    class _FirstOutput(torch.nn.Module):
        """Only the output we read (the pooler output of AutoModel would be exported and computed for nothing)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True)))[0]

    def run_export(tmp: Path) -> None:
        with torch.no_grad():
            torch.onnx.export(
                _FirstOutput(model),
                tuple(sample[name] for name in names),
                str(tmp),
                input_names=names,
                output_names=[output],
                dynamic_axes={**axes, output: output_axes},
                opset_version=OPSET,
                dynamo=False,
            )

    config = json.loads((model_dir / "config.json").read_text())
    meta = {
        "kind": kind,
        "inputs": names,
        "output": output,
        "config": config,
        "max_positions": config.get("max_position_embeddings"),
        "pad_id": tokenizer.pad_token_id,
        "pad_token": tokenizer.pad_token,
        "source": str(model_dir),
    }
    write_atomic(entry / "tokenizer.json", lambda tmp: backend_tokenizer.save(str(tmp)))
    write_atomic(entry / "meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
    # model.onnx goes last: its presence is what marks the entry complete.
    write_atomic(entry / MODEL_FILES["float32"], run_export)


def read_meta(entry: Path) -> dict[str, Any]:
    return dict(json.loads((entry / "meta.json").read_text()))


def open_session(file: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def open_tokenizer(entry: Path, meta: dict[str, Any], max_length: int) -> Any:
    """The entry's tokenizer, truncating and padding as sentence-transformers asks of the HF tokenizer."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(entry / "tokenizer.json"))
    tokenizer.enable_truncation(model_length(meta, max_length), strategy="longest_first")
    tokenizer.enable_padding(pad_id=meta["pad_id"], pad_token=meta["pad_token"])
    return tokenizer


def model_length(meta: dict[str, Any], max_length: int) -> int:
    return min(max_length, meta.get("max_positions") or max_length)


def feed(encodings: Sequence[Any], inputs: Sequence[str]) -> dict[str, np.ndarray]:
    """Session inputs from `tokenizers` encodings (padded to the batch's longest)."""
    return {name: np.array([getattr(e, _ENCODING_FIELDS[name]) for e in encodings], dtype=np.int64) for name in inputs}
