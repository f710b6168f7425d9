"""The health check (one dummy inference that must give usable scores) and the warm-up predictions."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crawlrag.rerank.backends import ScoringBackend

log = logging.getLogger(__name__)

QUERY = "How many people live in Berlin?"
RELEVANT = "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers."
IRRELEVANT = "The mitochondrion is the organelle that produces most of the chemical energy a cell needs."

# Prose of documentation-like length so warm-up runs the sequence lengths real requests use (~250 tokens).
_WARMUP_TEXT = (
    "The asyncio module provides infrastructure for writing single-threaded concurrent code using "
    "coroutines, multiplexing I/O access over sockets and other resources, running network clients and "
    "servers, and other related primitives. An event loop runs in a thread and executes all callbacks and "
    "tasks in that thread. While a task is running in the event loop, no other tasks can run in the same "
    "thread. When a task executes an await expression, the running task gets suspended, and the event loop "
    "executes the next task. "
)


def score_problem(scores: Sequence[float], expected: int) -> str | None:
    """Why `scores` cannot be used as one relevance score per pair, or None when they can."""
    if len(scores) != expected:
        return f"model returned {len(scores)} scores for {expected} pairs"
    bad = [score for score in scores if not _finite(score)]
    if bad:
        return f"model returned non-finite scores {bad[:3]}"
    return None


def _finite(score: object) -> bool:
    try:
        return math.isfinite(float(score))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    reason: str | None
    scores: tuple[float, ...]
    # Recorded, never asserted: an untrained or unusual model may rank arbitrarily and still be serviceable.
    relevant_ranked_first: bool | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "relevant_ranked_first": self.relevant_ranked_first,
            "seconds": round(self.seconds, 3),
        }


def validate(backend: ScoringBackend) -> ValidationResult:
    started = time.perf_counter()
    try:
        scores = list(backend.predict([(QUERY, RELEVANT), (QUERY, IRRELEVANT)]))
    except Exception as exc:
        return ValidationResult(False, f"health-check inference failed: {exc}", (), None, time.perf_counter() - started)
    problem = score_problem(scores, 2)
    elapsed = time.perf_counter() - started
    if problem is not None:
        return ValidationResult(False, f"health check failed: {problem}", tuple(scores), None, elapsed)
    first = scores[0] > scores[1]
    if not first:
        log.warning("reranker health check: the irrelevant passage scored higher (%.4f vs %.4f)", scores[1], scores[0])
    return ValidationResult(True, None, tuple(scores), first, elapsed)


def warmup_pairs(sample: int, count: int) -> list[tuple[str, str]]:
    # Lengths vary between samples so kernels for several sequence lengths are compiled and cached up front.
    size = 600 + (sample * 331) % 600  # ~1,000-char chunks, the default CHUNK_SIZE
    text = (_WARMUP_TEXT * 3)[:size]
    return [(f"asyncio event loop question {sample}", text[i % 50 :] + str(i)) for i in range(count)]


def warm_up(backend: ScoringBackend, samples: int, batch_size: int) -> float:
    """Run `samples` predictions of realistic length; returns the seconds they took. Errors propagate."""
    started = time.perf_counter()
    for sample in range(samples):
        backend.predict(warmup_pairs(sample, min(batch_size, 16)))
    return time.perf_counter() - started
