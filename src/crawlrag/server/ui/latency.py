"""Latency percentiles for the Health page, estimated from the Prometheus histograms in the process registry.

Estimated the way Prometheus' histogram_quantile does: find the bucket the rank falls in and interpolate linearly
inside it. Good to a bucket's width, which is what a glance at a health page needs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

# Histograms shown, with the label that splits each into rows, and how each is titled.
HISTOGRAMS = (
    ("crawlrag_embedding_duration_seconds", "kind", "Embedding"),
    ("crawlrag_rerank_request_seconds", "", "Reranking"),
    ("crawlrag_tool_duration_seconds", "tool", "MCP tool"),
)
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class LatencyRow:
    what: str
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """`buckets`: (upper bound, cumulative count) sorted by bound, ending with +Inf."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: its bound is the best estimate
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def latency_rows(registry: CollectorRegistry) -> list[LatencyRow]:
    rows: list[LatencyRow] = []
    for metric_name, label, title in HISTOGRAMS:
        series: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for family in registry.collect():
            if family.name != metric_name:
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    key = sample.labels.get(label, "") if label else ""
                    series[key].append((float(sample.labels["le"]), sample.value))
        for key, buckets in sorted(series.items()):
            buckets.sort()
            count = int(buckets[-1][1]) if buckets else 0
            values = [quantile(buckets, q) for q in QUANTILES]
            p50, p95, p99 = (None if v is None else round(v * 1000, 1) for v in values)
            rows.append(LatencyRow(f"{title} {key}".strip(), count, p50, p95, p99))
    return rows
