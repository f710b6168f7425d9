"""Counting tokens the way the embedding model counts them.

Chunk bounds (nothing embedded may be silently truncated) and answer budgets (`max_tokens` of the search tools)
are both in the embedding model's word pieces. A local model's own `tokenizer.json` is used where there is one;
a remote embedder gets an estimate that errs on the high side, so a budget is never exceeded by the estimate.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

# The estimate's pieces: runs of letters and digits, and each other visible character (WordPiece splits at
# underscores and punctuation). A run counts one piece per 3 characters, more than WordPiece's ~4 on English
# and code, so that the estimate stays above the real count.
_PIECE = re.compile(r"[^\W_]+|[^\w\s]|_", re.UNICODE)
_CHARS_PER_PIECE = 3


class TokenCounter(Protocol):
    """Counts tokens of texts. Thread-safe; cheap enough to call per search result."""

    @property
    def exact(self) -> bool:
        """True when the counts are the model's own tokenizer's, not an estimate."""

    def count(self, text: str) -> int: ...

    def counts(self, texts: Sequence[str]) -> list[int]: ...


class EstimatedTokenCounter:
    """An over-estimate for models whose tokenizer is not at hand (remote embedding servers)."""

    exact = False

    def count(self, text: str) -> int:
        return sum(max(1, math.ceil(len(piece) / _CHARS_PER_PIECE)) for piece in _PIECE.findall(text))

    def counts(self, texts: Sequence[str]) -> list[int]:
        return [self.count(text) for text in texts]


class TokenizerCounter:
    """The model's own fast tokenizer (`tokenizer.json`), without special tokens or truncation."""

    exact = True

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # a Tokenizer's truncation/padding state is shared; encode calls are not

    def count(self, text: str) -> int:
        return self.counts([text])[0]

    def counts(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


def counter_for_model_dir(model_dir: str | Path | None) -> TokenCounter:
    """The exact counter of a local model folder that has a `tokenizer.json`, else the estimate."""
    if model_dir is not None:
        tokenizer_file = Path(model_dir).expanduser() / "tokenizer.json"
        if tokenizer_file.is_file():
            try:
                return TokenizerCounter(tokenizer_file)
            except Exception:  # a corrupt or foreign tokenizer file: estimate rather than fail the caller
                return EstimatedTokenCounter()
    return EstimatedTokenCounter()
