from __future__ import annotations

from dataclasses import dataclass

import pytest

from crawlrag.fusion import (
    apply_kind_prior,
    asks_about_changes,
    fusion_weights,
    grouped_rank_fusion,
    kind_prior,
    limit_per_group,
    reciprocal_rank_fusion,
)


def test_rrf_math() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], key=str, k=60)
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [item for item, _ in fused] == ["a", "c", "b"]


def test_rrf_weights() -> None:
    fused = reciprocal_rank_fusion([["a"], ["b"]], key=str, k=1, weights=[1.0, 3.0])
    assert fused[0] == ("b", pytest.approx(1.5))


def test_rrf_keeps_first_object() -> None:
    first, second = {"id": 1, "rich": True}, {"id": 1}
    fused = reciprocal_rank_fusion([[first], [second]], key=lambda d: d["id"])
    assert fused[0][0] is first


def test_rrf_needs_one_weight_per_list() -> None:
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], key=str, weights=[1.0, 2.0])


def test_limit_per_group() -> None:
    items = [("p1", 1), ("p1", 2), ("p1", 3), ("p2", 4), ("p3", 5), ("p2", 6)]
    kept = limit_per_group(items, group=lambda item: item[0], per_group=2, limit=4)
    assert kept == [("p1", 1), ("p1", 2), ("p2", 4), ("p3", 5)]


def test_grouped_fusion_lets_a_page_collect_votes_from_different_chunks() -> None:
    # Page "a" is first on both sides through different chunks; page "b" is second on both sides through one
    # chunk. Item-level fusion would rank b1 first; page-level fusion ranks page a first.
    vector = ["a1", "b1", "c1"]
    keyword = ["a2", "b1", "c1"]
    item_level = [item for item, _ in reciprocal_rank_fusion([vector, keyword], key=str)]
    assert item_level[0] == "b1"
    fused = grouped_rank_fusion([vector, keyword], key=str, group=lambda item: item[0])
    order = [item for item, _ in fused]
    assert order[0] in ("a1", "a2") and order[1] == "b1"
    scores = dict(fused)
    assert scores[order[0]] == pytest.approx(2 / 61)
    # The page's other chunk keeps only its own item-level score, after the other pages' best chunks.
    other = "a2" if order[0] == "a1" else "a1"
    assert scores[other] == pytest.approx(1 / 61) and order.index(other) > order.index("b1")


def test_grouped_fusion_with_singleton_groups_is_plain_rrf() -> None:
    rankings = [["x", "y", "z"], ["z", "x"]]
    assert grouped_rank_fusion(rankings, key=str, group=str) == reciprocal_rank_fusion(rankings, key=str)


@dataclass
class KindHit:
    name: str
    score: float
    kind: str | None = None


def test_changelog_pages_rank_below_content_unless_the_query_is_about_changes() -> None:
    hits = [KindHit("news", 1.0, "changelog"), KindHit("guide", 0.8, "content"), KindHit("old", 0.7)]
    ordered = [hit.name for hit, _ in apply_kind_prior(hits, "upsert a row", score=lambda h: h.score)]
    assert ordered == ["guide", "old", "news"]
    for query in ("what changed in 3.12", "new in version 2", "deprecated options", "release notes"):
        assert asks_about_changes(query)
        assert apply_kind_prior(hits, query, score=lambda h: h.score)[0][0].name == "news"
    assert kind_prior(None, "x") == kind_prior("index", "x") == 1.0


def test_a_negative_score_still_moves_down() -> None:
    hits = [KindHit("news", -0.1, "changelog"), KindHit("guide", -0.15)]
    assert [h.name for h, _ in apply_kind_prior(hits, "q", score=lambda h: h.score)] == ["guide", "news"]


def test_natural_language_queries_lean_on_the_vector_side() -> None:
    vector, keyword = fusion_weights("natural", 1.0, 1.0)
    assert vector > keyword > 0
    assert fusion_weights("identifier", 1.0, 2.0) == [1.0, 2.0]
