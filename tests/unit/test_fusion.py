from __future__ import annotations

import pytest

from crawlrag.fusion import limit_per_group, reciprocal_rank_fusion


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
