"""Reranking of search results: a local cross-encoder, or a remote TEI / Cohere-style rerank server.

Importing this package is cheap: torch, sentence-transformers and onnxruntime are imported only when a
model is loaded, on the background thread `Reranker.start()` launches.
"""

from crawlrag.rerank.errors import RerankUnavailable
from crawlrag.rerank.factory import build_reranker
from crawlrag.rerank.local import LocalReranker
from crawlrag.rerank.protocol import Reranker
from crawlrag.rerank.remote import RemoteReranker
from crawlrag.rerank.state import RerankState

__all__ = ["LocalReranker", "RemoteReranker", "RerankState", "RerankUnavailable", "Reranker", "build_reranker"]
