"""The reranker's batch budget: padded tokens per forward pass, by device (`crawlrag.batching` plans the batches).

On a CPU the cost per token hardly depends on the batch (bench/rerank.py), so a small budget loses nothing and
keeps batches tight; a GPU needs large batches to be kept busy.
"""

from __future__ import annotations

from crawlrag.batching import padded_tokens, plan_batches

CPU_BATCH_TOKENS = 4096
GPU_BATCH_TOKENS = 32768

__all__ = ["CPU_BATCH_TOKENS", "GPU_BATCH_TOKENS", "default_batch_tokens", "padded_tokens", "plan_batches"]


def default_batch_tokens(device_kind: str) -> int:
    """RERANKING_BATCH_TOKENS when it is not set."""
    return CPU_BATCH_TOKENS if device_kind == "cpu" else GPU_BATCH_TOKENS
