"""Pure ranking helpers: reciprocal rank fusion and per-page de-duplication."""

from __future__ import annotations

import re
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


# A page's second-best chunk in a list adds this share of its own reciprocal rank to the page's vote: a page
# that answers in several places is likelier the one wanted than a page with one lucky chunk. Measured on all three
# dev sets: 0.5 helped git-doc and the Python docs most but favoured sqlite3-doc's long pages on natural-language
# queries (hybrid fell below vector there); 0.1 keeps hybrid >= vector on every set.
PAGE_SUPPORT = 0.1


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
    A group's second item in a list adds PAGE_SUPPORT of its item-level reciprocal rank to the group's vote.
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
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        seen: dict[Hashable, int] = {}
        for rank, item in enumerate(ranking, start=1):
            name = group(item)
            seen[name] = seen.get(name, 0) + 1
            if seen[name] == 2:
                group_scores[name] += PAGE_SUPPORT * weight / (k + rank)
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


# Release notes describe a feature in passing when it changes; the guide or reference page explains it. Unless the
# query asks about versions or changes, a changelog hit keeps this share of its score.
CHANGELOG_PRIOR = 0.5
_ABOUT_CHANGES = re.compile(
    r"\b(?:new|news|change[sd]?|changelog|release[sd]?|releases|version(?:s|ed)?|deprecat\w*|removed|added|"
    r"introduced|since|history|upgrad\w*|migrat\w*|announc\w*)\b|\d+\.\d+",
    re.IGNORECASE,
)


def asks_about_changes(query: str) -> bool:
    """Whether the query is about versions, releases or what changed (then changelog pages are what it wants)."""
    return _ABOUT_CHANGES.search(query) is not None


def kind_prior(kind: str | None, query: str) -> float:
    """The factor a hit's score is scaled by for its page kind (`content` when unknown): 1 except changelogs."""
    if kind == "changelog" and not asks_about_changes(query):
        return CHANGELOG_PRIOR
    return 1.0


def apply_kind_prior(items: Sequence[T], query: str, *, score: Callable[[T], float]) -> list[tuple[T, float]]:
    """Items re-ordered by score times their page kind's prior (read from an item's `kind`, if it has one).

    A negative score (a cosine below zero) is divided instead, so the prior always moves a hit down.
    """
    scored = []
    for item in items:
        factor = kind_prior(getattr(item, "kind", None), query)
        value = score(item)
        scored.append((item, value * factor if value >= 0 else value / factor))
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored


# A query that describes what it wants in prose shares many words with pages that are not about it, so its
# keyword ranking votes with this share of the keyword side's weight; one that names an identifier keeps it whole.
NATURAL_KEYWORD_SHARE = 0.75


def fusion_weights(style: str, vector_weight: float, keyword_weight: float) -> list[float]:
    """The [vector, keyword] weights of hybrid fusion for a query of `style` ("identifier" or "natural")."""
    share = NATURAL_KEYWORD_SHARE if style == "natural" else 1.0
    return [vector_weight, keyword_weight * share]
