"""The embedder seam: local sentence-transformers today, OpenAI-compatible servers later."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class EmbeddingError(RuntimeError):
    """An embedder could not load or could not embed; the message says why."""


class Embedder(Protocol):
    """Blocking embedder: call it from a worker thread, never from the event loop."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def load(self) -> None:
        """Load the model now (idempotent); otherwise the first embed call loads it."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dimension) float32 array of L2-normalised vectors."""

    def embed_query(self, text: str) -> np.ndarray:
        """Return one L2-normalised float32 vector."""

    def status(self) -> dict[str, Any]:
        """What /health reports about this embedder."""
