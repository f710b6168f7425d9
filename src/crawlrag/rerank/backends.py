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
PlanPrecision = Literal["float32", "float16", "bfloat16", "int8", "int8-full"]
Pair = tuple[str, str]


class ScoringBackend(Protocol):
    name: str  # "torch" or "onnx"
    precision: str
    device: str

    def predict(self, pairs: Sequence[Pair]) -> list[float]: ...
    def token_lengths(self, pairs: Sequence[Pair]) -> list[int]: ...  # after truncation; sizes the batches
    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendPlan:
    backend: BackendName
    precision: PlanPrecision
    device: DeviceChoice
    notes: tuple[str, ...] = ()
    max_length: int | None = None  # None: RERANKING_MAX_LENGTH
    # With RERANKING_PRECISION=auto on CPU: the choices `autotune` measures; this plan is used if it cannot.
    candidates: tuple[BackendPlan, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"

    def on_cpu(self, precision: PlanPrecision, note: str) -> BackendPlan:
        """The same backend moved to CPU (after a GPU ran out of memory)."""
        return replace(self, precision=precision, device=CPU, notes=(*self.notes, note))


def onnx_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers", "onnx"))


def _explicit_precision(settings: Settings) -> PlanPrecision | None:
    if settings.reranking_precision != "auto":
        return settings.reranking_precision
    return settings.gpu_precision if "gpu_precision" in settings.model_fields_set else None


def plan_backend(settings: Settings, manager: DeviceManager, onnx_ok: bool) -> BackendPlan:
    """Pick backend, device and precision from RERANKING_BACKEND, RERANKING_PRECISION, GPU_PREFERENCE, GPU_PRECISION.

    On a GPU `auto` is half precision torch (Spearman ≥ 0.999 against fp32). On a CPU with onnxruntime, `auto`
    returns the static choice (bf16 torch where the CPU has native bf16, else int8 ONNX) with the candidates
    `autotune` measures for speed and ranking agreement before loading. A precision set explicitly
    (RERANKING_PRECISION, else GPU_PRECISION) always wins over the automatic choice.
    """
    notes: list[str] = []
    requested = settings.reranking_backend
    explicit = _explicit_precision(settings)
    if requested == "openvino":
        notes.append("RERANKING_BACKEND=openvino is not supported (it needs optimum-intel); chose automatically")
        requested = "auto"
    if requested == "onnx" and not onnx_ok:
        notes.append("RERANKING_BACKEND=onnx needs onnxruntime, onnx and tokenizers (pip install crawlrag[onnx])")
        requested = "torch"
    if requested == "auto" and explicit in ("int8", "int8-full") and onnx_ok:
        requested = "onnx"  # int8 exists only in the onnx backend
    if requested == "onnx":
        # ONNX runs on CPU here: dynamic int8 kernels exist only for CPU, and no GPU probe (torch) is needed.
        if explicit in ("float16", "bfloat16"):
            notes.append(f"{explicit} is not offered by the onnx backend on CPU; using int8")
        precision: PlanPrecision = explicit if explicit in ("float32", "int8", "int8-full") else "int8"
        return BackendPlan("onnx", precision, CPU, tuple(notes))

    device = manager.select()
    if explicit in ("int8", "int8-full"):
        notes.append(f"{explicit} needs the onnx backend (pip install crawlrag[onnx]); using float32")
        explicit = "float32"
    if requested == "torch" or explicit is not None:
        want: Precision = explicit or settings.gpu_precision
    elif device.kind != "cpu":
        want = "bfloat16" if device.bf16_supported else "float16"
    else:
        bf16 = manager.cpu_bf16_supported()
        if onnx_ok:
            tried = [BackendPlan("onnx", p, device) for p in ("int8", "int8-full", "float32")]
            if bf16:
                tried.append(BackendPlan("torch", "bfloat16", device))
            default = tried[-1] if bf16 else tried[0]
            return replace(default, notes=tuple(notes), candidates=tuple(tried))
        want = "bfloat16" if bf16 else "float32"
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

    def token_lengths(self, pairs: Sequence[Pair]) -> list[int]:
        model = self._model
        features = model.tokenizer(
            [query for query, _ in pairs],
            [passage for _, passage in pairs],
            truncation="longest_first",
            max_length=model.max_seq_length,
        )
        return [len(ids) for ids in features["input_ids"]]

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
        max_length = plan.max_length or self.max_length
        if plan.backend == "onnx":
            from crawlrag.rerank.onnx_backend import OnnxBackend

            precision = plan.precision if plan.precision in ("float32", "int8", "int8-full") else "float32"
            return OnnxBackend.load(
                local_directory(source),
                self.cache_dir,
                precision=precision,
                max_length=max_length,
            )
        return TorchBackend.load(source, plan.device.device, plan.precision, max_length)
