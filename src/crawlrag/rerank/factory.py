"""`build_reranker`: the reranker RERANKING_PROVIDER names, or None when reranking is off."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from crawlrag.config import Settings
from crawlrag.rerank.local import LocalReranker
from crawlrag.rerank.protocol import Reranker
from crawlrag.rerank.remote import RemoteReranker


def build_reranker(settings: Settings, registry: CollectorRegistry | None = None) -> Reranker | None:
    """The configured reranker, or None when USE_RERANKING is false (/health then shows enabled: false)."""
    if not settings.use_reranking:
        return None
    if settings.reranking_provider in ("tei", "cohere"):
        return RemoteReranker(settings, registry)
    return LocalReranker(settings, registry)
