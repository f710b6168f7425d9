"""Query-time retrieval: vector and BM25 candidates, fused by reciprocal rank, then reranked when enabled."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import anyio
import numpy as np

from crawlrag.config import Settings
from crawlrag.embeddings import Embedder
from crawlrag.fusion import apply_kind_prior, fusion_weights, grouped_rank_fusion, limit_per_group
from crawlrag.models import PAGE_KINDS, CodeHit, PageKind, SearchHit
from crawlrag.rerank import Reranker, RerankUnavailable
from crawlrag.sources.scope import SearchInputError, SearchScope, resolve_scope
from crawlrag.store import EmbeddingMismatchError, Store
from crawlrag.store.query_terms import query_style

log = logging.getLogger(__name__)

SearchMode = Literal["vector", "keyword", "hybrid"]
Hit = TypeVar("Hit", SearchHit, CodeHit)
T = TypeVar("T")

# Each side of hybrid search contributes this many candidates per requested result: enough that fusion and the
# per-page limit still leave a full list, few enough that the keyword side stays fast.
CANDIDATE_FACTOR = 4
# How long an unscoped search trusts that every source matches the embedder; a scoped one always checks.
MODEL_CHECK_SECONDS = 30.0


async def gather(works: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run `works` concurrently; their results in order. The first failure is raised as itself.

    The two sides of hybrid search wait on different resources (the embedder and numpy; the FTS index), each in
    its own worker thread, so hybrid search costs about its slower side rather than the sum of both.
    """
    results: dict[int, T] = {}

    async def one(position: int, work: Callable[[], Awaitable[T]]) -> None:
        results[position] = await work()

    try:
        async with anyio.create_task_group() as tasks:
            for position, work in enumerate(works):
                tasks.start_soon(one, position, work)
    except BaseExceptionGroup as failed:
        # Callers handle the error of a side (a model mismatch, a store error), not anyio's wrapper of it.
        raise failed.exceptions[0] from None
    return [results[position] for position in range(len(works))]


@dataclass(slots=True)
class SearchResponse:
    results: list[Any]
    search_mode: SearchMode
    reranking_applied: bool
    reranking_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # site -> the version searched

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [hit.to_dict() for hit in self.results],
            "versions": self.versions,
            "search_mode": self.search_mode,
            "reranking_applied": self.reranking_applied,
            "reranking_reason": self.reranking_reason,
            "timings_ms": self.timings_ms,
        }


def _check_kinds(kinds: Sequence[str] | None) -> tuple[str, ...] | None:
    if kinds is None:
        return None
    unknown = sorted(set(kinds) - set(PAGE_KINDS))
    if unknown:
        raise SearchInputError(f"unknown page kind(s) {', '.join(unknown)}: kinds are {', '.join(PAGE_KINDS)}")
    return tuple(dict.fromkeys(kinds))


class SearchService:
    """Runs searches against one store with one embedder and, optionally, a reranker."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder, reranker: Reranker | None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self._all_checked_at: float | None = None

    def check_embedding_model(self, sources: Collection[str] | None) -> None:
        """Raise EmbeddingMismatchError when the sources searched (keys; None: all) were embedded with another model.

        Vectors of another model (even of the same width) are not comparable with the query's, so searching them
        would return confident nonsense.
        """
        wanted = (self.embedder.model_name, self.embedder.dimension)
        if sources is not None:
            recorded_models = {key: self.store.source_embedding(key) for key in sources}
            mismatched = {
                key: recorded
                for key, recorded in recorded_models.items()
                if recorded is not None and recorded != wanted
            }
        else:
            now = time.monotonic()
            if self._all_checked_at is not None and now - self._all_checked_at < MODEL_CHECK_SECONDS:
                return
            mismatched = {
                s.source_id: (s.embedding_model or "", s.embedding_dim or 0)
                for s in self.store.list_sources()
                if s.embedding_model and (s.embedding_model, s.embedding_dim) != wanted
            }
            if not mismatched:
                self._all_checked_at = now
        if mismatched:
            names = ", ".join(
                f"{sid} ({model}, {dim} dimensions)" for sid, (model, dim) in list(mismatched.items())[:5]
            )
            only = f" --source {next(iter(mismatched))}" if sources is not None and len(mismatched) == 1 else ""
            raise EmbeddingMismatchError(
                f"the configured embedding model is {wanted[0]} ({wanted[1]} dimensions) but {names} "
                f"{'was' if len(mismatched) == 1 else 'were'} indexed with another: set EMBEDDING_MODEL back or run "
                f"`crawlrag reindex{only}`"
            )

    def validate(self, query: str, match_count: int) -> str:
        query = query.replace("\x00", " ").strip() if isinstance(query, str) else ""
        if not query:
            raise SearchInputError("query must be a non-empty string")
        if len(query) > self.settings.max_query_chars:
            raise SearchInputError(
                f"query is {len(query)} characters long; the limit is {self.settings.max_query_chars} (MAX_QUERY_CHARS)"
            )
        if not 1 <= match_count <= self.settings.max_match_count:
            raise SearchInputError(
                f"match_count must be between 1 and {self.settings.max_match_count}, got {match_count}"
            )
        return query

    def default_mode(self) -> SearchMode:
        return "hybrid" if self.settings.use_hybrid_search else "vector"

    async def search(
        self,
        query: str,
        *,
        source_id: str | None = None,
        version: str | None = None,
        match_count: int = 5,
        mode: SearchMode | None = None,
        rerank: bool | None = None,
        kinds: Sequence[PageKind] | None = None,
    ) -> SearchResponse:
        """Search page chunks; at most MAX_CHUNKS_PER_PAGE results come from any one page.

        `source_id` is a site (None: every site) and `version` one of its indexed versions (None: each site's
        newest; see crawlrag.sources.scope). `kinds` keeps only chunks of pages of those kinds ("content",
        "changelog"); None searches all.
        """
        wanted_kinds = _check_kinds(kinds)
        scope = await self.scope(source_id, version)
        response = await self._run(
            query,
            scope.keys,
            match_count,
            mode,
            rerank,
            vector=lambda vec, limit, source: self.store.vector_search(vec, limit, source, wanted_kinds),
            keyword=lambda text, limit, source: self.store.keyword_search(text, limit, source, wanted_kinds),
            key=lambda hit: hit.chunk_id,
            group=lambda hit: hit.url,
            text=lambda hit: hit.content,
        )
        return await self._labelled(response, scope)

    async def search_code(
        self,
        query: str,
        *,
        source_id: str | None = None,
        version: str | None = None,
        match_count: int = 5,
        mode: SearchMode | None = None,
        rerank: bool | None = None,
    ) -> SearchResponse:
        """Search extracted code examples with the same hybrid, rerank and version path."""
        scope = await self.scope(source_id, version)
        response = await self._run(
            query,
            scope.keys,
            match_count,
            mode,
            rerank,
            vector=self.store.code_vector_search,
            keyword=self.store.code_keyword_search,
            key=lambda hit: hit.example_id,
            group=lambda hit: hit.example_id,
            text=lambda hit: f"{hit.summary}\n\n{hit.code}",
        )
        return await self._labelled(response, scope)

    async def scope(self, source: str | None, version: str | None) -> SearchScope:
        """The source keys a search of `source` (a site) in `version` reads; ScopeError names what is indexed."""
        entries = await anyio.to_thread.run_sync(self.store.source_versions)
        return resolve_scope(entries, source, version)

    async def _labelled(self, response: SearchResponse, scope: SearchScope) -> SearchResponse:
        """Results with their site, version and the time their page was crawled; the versions searched."""
        pages = [(hit.source_id, hit.url) for hit in response.results]
        dates = await anyio.to_thread.run_sync(self.store.page_dates, pages) if pages else {}
        for hit in response.results:
            hit.indexed_at = dates.get((hit.source_id, hit.url))
            scope.label(hit)
        response.versions = scope.versions
        return response

    async def _run(
        self,
        query: str,
        sources: tuple[str, ...] | None,
        match_count: int,
        mode: SearchMode | None,
        rerank: bool | None,
        *,
        vector: Callable[[np.ndarray, int, tuple[str, ...] | None], list[Hit]],
        keyword: Callable[[str, int, tuple[str, ...] | None], list[Hit]],
        key: Callable[[Hit], Any],
        group: Callable[[Hit], Any],
        text: Callable[[Hit], str],
    ) -> SearchResponse:
        query = self.validate(query, match_count)
        mode = mode or self.default_mode()
        use_rerank = self.reranker is not None and self.reranker.enabled and rerank is not False
        wanted = max(match_count, self.settings.reranking_candidates) if use_rerank else match_count
        pool = wanted * CANDIDATE_FACTOR
        timings: dict[str, float] = {}

        async def timed(name: str, work: Callable[[], Awaitable[list[Hit]]]) -> list[Hit]:
            started = time.perf_counter()
            result = await work()
            timings[name] = round((time.perf_counter() - started) * 1000, 2)
            return result

        def vector_work() -> list[Hit]:
            self.check_embedding_model(sources)
            return vector(self.embedder.embed_query(query), pool, sources)

        async def vector_side() -> list[Hit]:
            # One worker thread for the whole side: each hand-over between threads waits for a core, which on a
            # busy machine costs milliseconds.
            return await anyio.to_thread.run_sync(vector_work)

        async def keyword_side() -> list[Hit]:
            return await anyio.to_thread.run_sync(keyword, query, pool, sources)

        sides = [("vector", vector_side)] if mode in ("vector", "hybrid") else []
        sides += [("keyword", keyword_side)] if mode in ("keyword", "hybrid") else []
        rankings = await gather([partial(timed, name, work) for name, work in sides])
        if mode == "hybrid":
            fused = grouped_rank_fusion(
                rankings,
                key=key,
                group=group,
                k=self.settings.rrf_k,
                weights=fusion_weights(
                    query_style(query), self.settings.rrf_vector_weight, self.settings.rrf_keyword_weight
                ),
            )
            similarity = {key(hit): hit.similarity for hit in rankings[0]}
            keyword_score = {key(hit): hit.keyword_score for hit in rankings[1]}
            candidates = []
            for hit, score in fused:
                hit.score = score
                hit.similarity = similarity.get(key(hit))
                hit.keyword_score = keyword_score.get(key(hit))
                candidates.append(hit)
        else:
            candidates = rankings[0]
        prioritised = apply_kind_prior(candidates, query, score=lambda hit: hit.score)
        for hit, score in prioritised:
            hit.score = score
        candidates = [hit for hit, _ in prioritised]
        per_page = self.settings.max_chunks_per_page
        candidates = limit_per_group(candidates, group=group, per_group=per_page, limit=wanted)

        applied, reason = False, None
        if use_rerank and candidates:
            started = time.perf_counter()
            applied, reason = await self._rerank(query, candidates, text)
            timings["rerank"] = round((time.perf_counter() - started) * 1000, 2)
            if applied:
                candidates.sort(key=lambda hit: hit.rerank_score or 0.0, reverse=True)
        elif self.reranker is None or not self.reranker.enabled:
            reason = "reranking is disabled (USE_RERANKING=false)"
        else:
            reason = "reranking was not requested"
        return SearchResponse(candidates[:match_count], mode, applied, None if applied else reason, timings)

    async def _rerank(self, query: str, hits: Sequence[Hit], text: Callable[[Hit], str]) -> tuple[bool, str | None]:
        assert self.reranker is not None
        try:
            if not await self.reranker.wait_ready(self.settings.reranking_wait_seconds):
                return False, f"reranker not ready ({self.reranker.status().get('state')})"
            scores = await self.reranker.rerank(query, [text(hit) for hit in hits])
        except RerankUnavailable as exc:
            log.warning("reranking skipped: %s", exc)
            return False, str(exc)
        for hit, score in zip(hits, scores, strict=True):
            hit.rerank_score = float(score)
            hit.score = float(score)
        return True, None
