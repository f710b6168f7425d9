"""Builders for store tests: pages with chunks, code examples and unit vectors, plus brute-force search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crawlrag.models import Chunk, CodeExample, Page, content_hash
from crawlrag.store.base import PageWrite

DIM = 16
MODEL = "test-model"


def unit_vectors(rng: np.random.Generator, count: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def page_write(
    url: str,
    source_id: str,
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    title: str = "A page",
    headings: Sequence[str] | None = None,
    code: Sequence[CodeExample] = (),
    code_vectors: np.ndarray | None = None,
    etag: str | None = None,
) -> PageWrite:
    """A page whose chunks are `texts`, embedded as `vectors` (one row each)."""
    heads = list(headings) if headings is not None else [f"# {title}"] * len(texts)
    chunks = [
        Chunk.build(url=url, title=title, headings=heads[i], chunk_index=i, content=text)
        for i, text in enumerate(texts)
    ]
    page = Page(url=url, source_id=source_id, title=title, markdown="\n\n".join(texts), etag=etag)
    hashes = [content_hash(f"{url}#{i}:{text}") for i, text in enumerate(texts)]
    return PageWrite(page, chunks, vectors, hashes, code, code_vectors)


def code_example(url: str, index: int, code: str, summary: str, language: str = "python") -> CodeExample:
    return CodeExample(
        url=url,
        chunk_index=index,
        language=language,
        code=code,
        summary=summary,
        context_before="before",
        context_after="after",
        headings="## Examples",
    )


def brute_force(vectors: np.ndarray, keys: Sequence[object], query: np.ndarray, limit: int) -> list[object]:
    """The keys of the `limit` rows most similar to `query`, by exact cosine similarity."""
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:limit]
    return [keys[i] for i in order]
