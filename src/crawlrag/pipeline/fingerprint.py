"""The index settings a stored page was processed with, as one short fingerprint.

A page whose content did not change is still re-processed when its fingerprint differs from the current one:
turning on code examples, contextual embeddings or another chunk size then takes effect on the next crawl.
"""

from __future__ import annotations

import hashlib
import json

from crawlrag.config import Settings
from crawlrag.crawl.extract import EXTRACTION_VERSION


def index_fingerprint(settings: Settings, *, chunk_size: int, embedding_model: str) -> str:
    """16 hex digits over everything that changes the chunks, code examples or vectors stored for a page."""
    parts = {
        "chunk_size": chunk_size,
        "max_link_density": settings.max_link_density,
        "code_examples": settings.use_agentic_rag,
        "code_min_chars": settings.code_min_chars if settings.use_agentic_rag else None,
        "contextual": settings.use_contextual_embeddings,
        "llm": settings.model_choice if settings.llm_provider != "none" else None,
        "embedding_model": embedding_model,
        "extraction": EXTRACTION_VERSION,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
