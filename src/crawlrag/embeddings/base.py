"""The embedder seam: local sentence-transformers today, OpenAI-compatible servers later."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from crawlrag.tokens import TokenCounter


class EmbeddingError(RuntimeError):
    """An embedder could not load or could not embed; the message says why."""


class Embedder(Protocol):
    """Blocking embedder: call it from a worker thread, never from the event loop."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_input_tokens(self) -> int | None:
        """How many tokens of a text the model reads (its window, e.g. 256 word pieces for MiniLM); None: unknown.

        Text beyond it is silently truncated when embedded, so chunks are bounded by it. Loads a local model.
        """

    def token_counter(self) -> TokenCounter:
        """Counts tokens as this model does: exact for local models, an over-estimate for remote ones."""

    def load(self) -> None:
        """Load the model now (idempotent); otherwise the first embed call loads it."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dimension) float32 array of L2-normalised vectors."""

    def embed_query(self, text: str) -> np.ndarray:
        """Return one L2-normalised float32 vector."""

    def status(self) -> dict[str, Any]:
        """What /health reports about this embedder."""

    def close(self) -> None:
        """Release worker processes and connections (idempotent).

        A local model still embeds after it, in this process; a remote embedder's connection is gone.
        """


class EmbedderWrapper(ABC):
    """An embedder that hands every call to `inner`: a wrapper overrides only what it adds (metrics, a choice)."""

    @property
    @abstractmethod
    def inner(self) -> Embedder:
        """The embedder the calls go to."""

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_input_tokens(self) -> int | None:
        return self.inner.max_input_tokens

    def token_counter(self) -> TokenCounter:
        return self.inner.token_counter()

    def load(self) -> None:
        self.inner.load()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def status(self) -> dict[str, Any]:
        return self.inner.status()

    def close(self) -> None:
        self.inner.close()
