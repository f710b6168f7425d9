from __future__ import annotations

from crawlrag.config import Settings
from crawlrag.embeddings.base import Embedder
from crawlrag.embeddings.local import LocalEmbedder


def build_embedder(settings: Settings) -> Embedder:
    """The embedder that `settings.embedding_provider` names."""
    return LocalEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
        precision=settings.embedding_precision,
    )
