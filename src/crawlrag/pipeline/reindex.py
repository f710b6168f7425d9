"""Re-embed the stored chunks of sources with the configured embedder, without crawling them again."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crawlrag.config import Settings
from crawlrag.embeddings import Embedder
from crawlrag.llm import Enricher
from crawlrag.models import Chunk, content_hash
from crawlrag.pipeline.indexer import EMBED_BATCH_CHUNKS, embedding_text
from crawlrag.store import Store, StoreError
from crawlrag.store.base import SourceEmbeddings, SourceTexts


@dataclass(slots=True)
class ReindexReport:
    model: str
    dimension: int
    sources: list[str] = field(default_factory=list)
    chunks: int = 0
    code_examples: int = 0
    embedded: int = 0  # texts sent to the embedder (the rest reused stored vectors of identical text)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def sources_to_reindex(store: Store, embedder: Embedder, source_id: str | None) -> list[str]:
    """`source_id` if given (a site: every version of it; or one source key), else every source not already on
    the configured model."""
    known = {source.source_id: source for source in store.list_sources()}
    if source_id is not None:
        chosen = [sid for sid, info in known.items() if info.site == source_id] or (
            [source_id] if source_id in known else []
        )
        if not chosen:
            raise StoreError(f"unknown source {source_id!r}: see `crawlrag sources`")
        return chosen
    wanted = (embedder.model_name, embedder.dimension)
    return [sid for sid, info in known.items() if (info.embedding_model, info.embedding_dim) != wanted]


class Reindexer:
    def __init__(self, settings: Settings, store: Store, embedder: Embedder, enricher: Enricher | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.enricher = enricher

    def run(self, source_ids: Sequence[str], on_source: Callable[[str], None] | None = None) -> ReindexReport:
        """Embed every source first, then replace all their vectors in one transaction: a failure changes nothing."""
        started = time.perf_counter()
        report = ReindexReport(self.embedder.model_name, self.embedder.dimension)
        updates = []
        for source_id in source_ids:
            if on_source is not None:
                on_source(source_id)
            texts = self.store.source_texts(source_id)
            chunk_texts = self._chunk_texts(texts)
            code_texts = [f"{example.summary}\n\n{example.code}" for example in texts.code_examples]
            hashes = [content_hash(text) for text in chunk_texts]
            vectors = self._embed([*chunk_texts, *code_texts], report)
            updates.append(
                SourceEmbeddings(
                    source_id,
                    [chunk.chunk_id for chunk in texts.chunks],
                    hashes,
                    vectors[: len(chunk_texts)],
                    [example.example_id for example in texts.code_examples],
                    vectors[len(chunk_texts) :],
                )
            )
            report.sources.append(source_id)
            report.chunks += len(chunk_texts)
            report.code_examples += len(code_texts)
        if updates:
            self.store.replace_embeddings(report.model, report.dimension, updates)
        report.seconds = round(time.perf_counter() - started, 2)
        return report

    def _chunk_texts(self, texts: SourceTexts) -> list[str]:
        contextual = self.settings.use_contextual_embeddings
        chunks = [
            Chunk.build(url=c.url, title=c.title, headings=c.headings, chunk_index=c.chunk_index, content=c.content)
            for c in texts.chunks
        ]
        result = [embedding_text(chunk, contextual) for chunk in chunks]
        if not contextual or self.enricher is None:
            return result
        # The LLM's contexts are not stored, so they are asked for again (the page markdown is).
        by_page: dict[str, list[int]] = {}
        for position, chunk in enumerate(chunks):
            by_page.setdefault(chunk.url, []).append(position)
        for url, positions in by_page.items():
            markdown = self.store.page_markdown(url, texts.source_id)
            if markdown is None:
                continue
            contexts = self.enricher.chunk_contexts(markdown, [chunks[i].content for i in positions])
            for position, context in zip(positions, contexts, strict=True):
                if context:
                    result[position] = f"{context}\n---\n{chunks[position].content}"
        return result

    def _embed(self, texts: list[str], report: ReindexReport) -> np.ndarray:
        vectors = np.zeros((len(texts), report.dimension), dtype=np.float32)
        hashes = [content_hash(text) for text in texts]
        known = self.store.embeddings_for(hashes, report.model)
        # A stored vector of another width (same model name, other EMBEDDING_DIMENSIONS) is not reusable.
        missing = [i for i, h in enumerate(hashes) if h not in known or len(known[h]) != report.dimension]
        reused = set(range(len(texts))) - set(missing)
        for i in reused:
            vectors[i] = known[hashes[i]]
        for start in range(0, len(missing), EMBED_BATCH_CHUNKS):
            batch = missing[start : start + EMBED_BATCH_CHUNKS]
            # EmbeddingError propagates: nothing is written, and no zero vector ever stands in for a failed one.
            vectors[batch] = self.embedder.embed_documents([texts[i] for i in batch])
            report.embedded += len(batch)
        return vectors
