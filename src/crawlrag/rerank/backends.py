"""Scoring backends and the choice of backend and precision for a device.

A backend turns (query, passage) pairs into one relevance score each, with the model's activation applied, so
scores are comparable whichever backend produced them. The torch backend wraps sentence-transformers'
`CrossEncoder`; the ONNX backend (`onnx_backend.py`) runs a cached export without importing torch.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from crawlrag.config import Settings
from crawlrag.model_loading import MODEL_BUILD_LOCK
from crawlrag.rerank.device import CPU, DeviceChoice, DeviceManager, Precision
from crawlrag.rerank.hub import ModelSource, local_directory

log = logging.getLogger(__name__)

BackendName = Literal["torch", "onnx"]
PlanPrecision = Literal["float32", "float16", "bfloat16", "int8"]
Pair = tuple[str, str]


class ScoringBackend(Protocol):
    name: str  # "torch" or "onnx"
    precision: str
    device: str

    def predict(self, pairs: Sequence[Pair]) -> list[float]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendPlan:
    backend: BackendName
    precision: PlanPrecision
    device: DeviceChoice
    notes: tuple[str, ...] = ()

    def on_cpu(self, precision: PlanPrecision, note: str) -> BackendPlan:
        """The same backend moved to CPU (after a GPU ran out of memory)."""
        return replace(self, precision=precision, device=CPU, notes=(*self.notes, note))


def onnx_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers", "onnx"))


def plan_backend(settings: Settings, manager: DeviceManager, onnx_ok: bool) -> BackendPlan:
    """Pick backend, device and precision from RERANKING_BACKEND, GPU_PREFERENCE and GPU_PRECISION.

    `auto` picks the fastest choice that keeps the ranking of fp32 (Spearman ≥ 0.99 in bench/rerank.py):
    half precision torch on a GPU; on CPU bf16 torch where the CPU has native bf16, else int8 ONNX, else fp32.
    A GPU_PRECISION the user set explicitly always wins over the automatic choice.
    """
    notes: list[str] = []
    requested = settings.reranking_backend
    explicit: Precision | None = settings.gpu_precision if "gpu_precision" in settings.model_fields_set else None
    if requested == "openvino":
        notes.append("RERANKING_BACKEND=openvino is not supported (it needs optimum-intel); chose automatically")
        requested = "auto"
    if requested == "onnx" and not onnx_ok:
        notes.append("RERANKING_BACKEND=onnx needs onnxruntime, onnx and tokenizers (pip install crawlrag[onnx])")
        requested = "torch"
    if requested == "onnx":
        # ONNX runs on CPU here: dynamic int8 kernels exist only for CPU, and no GPU probe (torch) is needed.
        return BackendPlan("onnx", "float32" if explicit == "float32" else "int8", CPU, tuple(notes))

    device = manager.select()
    if requested == "torch" or explicit is not None:
        want: Precision = explicit or settings.gpu_precision
    elif device.kind != "cpu":
        want = "bfloat16" if device.bf16_supported else "float16"
    elif manager.cpu_bf16_supported():
        want = "bfloat16"
    elif onnx_ok:
        notes.append("no native bfloat16 on this CPU; using int8 ONNX")
        return BackendPlan("onnx", "int8", device, tuple(notes))
    else:
        want = "float32"
    precision, note = manager.resolve_precision(device, want)
    if note:
        notes.append(note)
    return BackendPlan("torch", precision, device, tuple(notes))


class TorchBackend:
    """sentence-transformers `CrossEncoder`; it applies the model's saved activation (sigmoid by default)."""

    name = "torch"

    def __init__(self, model: Any, device: str, precision: str) -> None:
        self._model = model
        self.device = device
        self.precision = precision

    @classmethod
    def load(cls, source: ModelSource, device: str, precision: str, max_length: int) -> TorchBackend:
        import torch  # deferred: only the torch backend pays for the import
        from sentence_transformers import CrossEncoder

        model_kwargs = {"dtype": getattr(torch, precision)} if precision != "float32" else None
        with MODEL_BUILD_LOCK:
            model = CrossEncoder(
                source.location,
                device=device,
                max_length=max_length,
                # local_files_only also stops sentence-transformers asking the hub for model-card data.
                local_files_only=source.local,
                model_kwargs=model_kwargs,
            )
        positions = getattr(model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions < max_length:
            log.info(
                "RERANKING_MAX_LENGTH=%d exceeds the model's %d positions; using %d",
                max_length,
                positions,
                positions,
            )
            model.max_seq_length = positions
        model.eval()
        return cls(model, device, precision)

    def predict(self, pairs: Sequence[Pair]) -> list[float]:
        scores = self._model.predict(
            list(pairs), batch_size=max(1, len(pairs)), show_progress_bar=False, convert_to_numpy=True
        )
        return scores_to_list(np.asarray(scores, dtype=np.float64))

    def close(self) -> None:
        self._model = None


def scores_to_list(scores: np.ndarray) -> list[float]:
    if scores.ndim > 1 and scores.shape[-1] != 1:
        raise ValueError(f"the model has {scores.shape[-1]} labels; a reranker needs one relevance score per pair")
    return [float(value) for value in scores.reshape(-1)]


class BackendLoader(Protocol):
    def __call__(self, source: ModelSource, plan: BackendPlan) -> ScoringBackend: ...


class DefaultBackendLoader:
    """Loads the planned backend; ONNX exports are cached under `cache_dir` so they happen once per model."""

    def __init__(self, max_length: int, cache_dir: Path) -> None:
        self.max_length = max_length
        self.cache_dir = cache_dir

    def __call__(self, source: ModelSource, plan: BackendPlan) -> ScoringBackend:
        if plan.backend == "onnx":
            from crawlrag.rerank.onnx_backend import OnnxBackend

            return OnnxBackend.load(
                local_directory(source),
                self.cache_dir,
                quantize=plan.precision == "int8",
                max_length=self.max_length,
            )
        return TorchBackend.load(source, plan.device.device, plan.precision, self.max_length)
