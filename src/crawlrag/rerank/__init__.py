"""Cross-encoder reranking of search results.

Importing this package is cheap: torch, sentence-transformers and onnxruntime are imported only when a
model is loaded, on the background thread `Reranker.start()` launches.
"""

from crawlrag.rerank.errors import RerankUnavailable
from crawlrag.rerank.local import LocalReranker, build_reranker
from crawlrag.rerank.protocol import Reranker
from crawlrag.rerank.state import RerankState

__all__ = ["LocalReranker", "RerankState", "RerankUnavailable", "Reranker", "build_reranker"]
