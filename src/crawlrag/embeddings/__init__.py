"""Text embedders: turn chunks and queries into L2-normalised float32 vectors."""

from crawlrag.embeddings.base import Embedder, EmbedderWrapper, EmbeddingError
from crawlrag.embeddings.factory import build_embedder
from crawlrag.embeddings.local import LocalEmbedder, resolve_model_path
from crawlrag.embeddings.openai import OpenAICompatibleEmbedder

__all__ = [
    "Embedder",
    "EmbedderWrapper",
    "EmbeddingError",
    "LocalEmbedder",
    "OpenAICompatibleEmbedder",
    "build_embedder",
    "resolve_model_path",
]
