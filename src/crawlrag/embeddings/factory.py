from __future__ import annotations

from crawlrag.config import Settings
from crawlrag.embeddings.base import Embedder
from crawlrag.embeddings.local import LocalEmbedder
from crawlrag.embeddings.openai import OpenAICompatibleEmbedder
from crawlrag.remote import RetryPolicy


def build_embedder(settings: Settings) -> Embedder:
    """The embedder that `settings.embedding_provider` names."""
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
    return LocalEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
        precision=settings.embedding_precision,
    )
