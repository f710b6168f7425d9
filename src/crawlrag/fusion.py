"""Pure ranking helpers: reciprocal rank fusion and per-page de-duplication."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[T]],
    *,
    key: Callable[[T], Hashable],
    weights: Sequence[float] | None = None,
    k: int = 60,
) -> list[tuple[T, float]]:
    """Fuse ranked lists: each item scores sum(weight / (k + rank)), rank starting at 1.

    The first occurrence of an item (in list order) is the one returned, so pass the list whose objects carry
    the richest fields first.
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking is required")
    scores: dict[Hashable, float] = {}
    items: dict[Hashable, T] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            item_key = key(item)
            items.setdefault(item_key, item)
            scores[item_key] = scores.get(item_key, 0.0) + weight / (k + rank)
    ordered = sorted(scores, key=lambda item_key: scores[item_key], reverse=True)
    return [(items[item_key], scores[item_key]) for item_key in ordered]


def limit_per_group(items: Iterable[T], *, group: Callable[[T], Hashable], per_group: int, limit: int) -> list[T]:
    """Keep items in order, at most `per_group` of each group, until `limit` are kept."""
    kept: list[T] = []
    counts: dict[Hashable, int] = {}
    for item in items:
        if len(kept) >= limit:
            break
        name = group(item)
        if counts.get(name, 0) < per_group:
            counts[name] = counts.get(name, 0) + 1
            kept.append(item)
    return kept


def grouped_rank_fusion(
    rankings: Sequence[Sequence[T]],
    *,
    key: Callable[[T], Hashable],
    group: Callable[[T], Hashable],
    weights: Sequence[float] | None = None,
    k: int = 60,
) -> list[tuple[T, float]]:
    """Reciprocal rank fusion that lets each group (page) vote once per list through its best item (chunk).

    A group's rank in a list is the rank of its best item there, counted over groups. Fusing at this level lets
    a page whose best chunk for keywords differs from its best chunk for meaning collect both votes, where
    item-level fusion would split them between two chunks and let a page that is middling on both sides win.
    The group's best item carries the group's score; its other items stand on their own item-level score, so
    they follow other pages' best chunks unless they are strong in their own right.
    """
    group_rankings = []
    for ranking in rankings:
        ordered: dict[Hashable, T] = {}
        for item in ranking:
            ordered.setdefault(group(item), item)
        group_rankings.append(list(ordered))
    group_scores = dict(reciprocal_rank_fusion(group_rankings, key=lambda name: name, weights=weights, k=k))
    scored: list[tuple[T, float]] = []
    led: set[Hashable] = set()
    for item, score in reciprocal_rank_fusion(rankings, key=key, weights=weights, k=k):
        name = group(item)
        if name not in led:
            led.add(name)
            score = group_scores[name]
        scored.append((item, score))
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored
