"""Optional LLM calls (OpenAI-compatible chat API) that enrich indexing; each has a deterministic fallback."""

from crawlrag.llm.client import ChatClient
from crawlrag.llm.enrich import Enricher, build_enricher

__all__ = ["ChatClient", "Enricher", "build_enricher"]
