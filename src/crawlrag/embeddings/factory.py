from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import platformdirs

from crawlrag.config import Settings
from crawlrag.embeddings.base import Embedder
from crawlrag.embeddings.choice import AutoEmbedder, Candidate
from crawlrag.embeddings.local import LocalEmbedder, resolve_model_path
from crawlrag.embeddings.onnx import OnnxEmbedder
from crawlrag.embeddings.openai import OpenAICompatibleEmbedder
from crawlrag.onnx_export import OnnxPrecision
from crawlrag.remote import RetryPolicy


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("crawlrag", appauthor=False)) / "embed-onnx"


def onnx_available() -> bool:
    from crawlrag.rerank.backends import onnx_available as available

    return available()


def build_embedder(settings: Settings, cache_dir: Path | None = None) -> Embedder:
    """The embedder that `settings.embedding_provider` and EMBEDDING_BACKEND / EMBEDDING_PRECISION name."""
    if settings.embedding_provider == "openai":
        return OpenAICompatibleEmbedder(
            settings.embedding_model,
            settings.openai_base_url,
            api_key=settings.openai_api_key,
            dimensions=settings.embedding_dimensions,
            batch_size=settings.embedding_batch_size,
            concurrency=settings.embedding_concurrency,
            timeout_seconds=settings.embedding_timeout_seconds,
            retry=RetryPolicy(max_retries=settings.embedding_max_retries),
        )
    cache = cache_dir or default_cache_dir()
    source = Path(resolve_model_path(settings.embedding_model))
    model_dir = source if source.is_dir() else None
    backend, precision = settings.embedding_backend, settings.embedding_precision
    on_cpu = settings.embedding_device == "cpu"
    onnx_ok = on_cpu and model_dir is not None and onnx_available()

    def torch_embedder() -> Embedder:
        # int8 exists only in the onnx backend; torch then decides its own precision.
        return LocalEmbedder(
            settings.embedding_model,
            device=settings.embedding_device,
            batch_size=settings.embedding_batch_size,
            precision="auto" if precision == "int8" else precision,
            workers=settings.embedding_workers,
        )

    def onnx_embedder(onnx_precision: OnnxPrecision, reason: str) -> Callable[[], Embedder]:
        assert model_dir is not None
        return lambda: OnnxEmbedder(
            settings.embedding_model,
            model_dir,
            cache,
            precision=onnx_precision,
            batch_size=settings.embedding_batch_size,
            reason=reason,
        )

    # int8 exists only in the onnx backend, so asking for it picks that backend whatever EMBEDDING_BACKEND says.
    if onnx_ok and (backend == "onnx" or precision == "int8"):
        chosen: OnnxPrecision = "float32" if precision == "float32" else "int8"
        return onnx_embedder(chosen, "set by EMBEDDING_BACKEND / EMBEDDING_PRECISION")()
    if backend == "torch" or not onnx_ok:
        return torch_embedder()
    if precision != "auto":
        return torch_embedder()  # an explicit float32 / bfloat16 / float16 with backend auto stays torch's
    candidates: list[Candidate] = [
        ("torch", torch_embedder),
        ("onnx int8", onnx_embedder("int8", "auto: measured fastest agreeing with float32")),
        ("onnx float32", onnx_embedder("float32", "auto: measured fastest agreeing with float32")),
    ]
    return AutoEmbedder(
        settings.embedding_model,
        candidates,
        onnx_embedder("float32", "reference"),
        fallback="torch",
        model_dir=model_dir,
        cache_dir=cache,
    )
