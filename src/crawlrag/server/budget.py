"""The token counter answers are measured with: the embedding model's own tokenizer where it is local."""

from __future__ import annotations

from crawlrag.config import Settings
from crawlrag.embeddings.local import resolve_model_path
from crawlrag.tokens import TokenCounter, counter_for_model_dir


def answer_token_counter(settings: Settings) -> TokenCounter:
    """Built once per server; a remote embedder's tokenizer is not at hand, so its answers use the estimate."""
    if settings.embedding_provider != "local":
        return counter_for_model_dir(None)
    return counter_for_model_dir(resolve_model_path(settings.embedding_model))
