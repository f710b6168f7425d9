"""Reranker measurements, kept twice: Prometheus series for scraping and plain numbers for /health."""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import Enum as EnumMetric

from crawlrag.rerank.state import RerankState

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_WINDOW = 2048  # recent requests the percentiles are computed over


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    # ceil(fraction × n), less a hair so 0.95 × 100 (= 95.00000000000001) is rank 95, not 96.
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values) - 1e-9) - 1))
    return sorted_values[index]


class RerankMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A private registry when none is given, so that two rerankers in one process never collide.
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        p = "crawlrag_rerank_"
        self._state = EnumMetric(
            p + "state", "Reranker lifecycle state", states=[s.value for s in RerankState], registry=reg
        )
        self._load_seconds = Gauge(p + "load_seconds", "Seconds the serving model took to load", registry=reg)
        self._warmup_seconds = Gauge(p + "warmup_seconds", "Seconds the warm-up predictions took", registry=reg)
        self._validated = Gauge(p + "validated", "1 if the health-check inference passed, 0 if it failed", registry=reg)
        self._loads = Counter(p + "model_loads", "Models loaded into memory by this process", registry=reg)
        self._requests = Counter(p + "requests", "Rerank requests answered", ["outcome"], registry=reg)
        self._pairs = Counter(p + "pairs", "Query-passage pairs scored", registry=reg)
        self._latency = Histogram(
            p + "request_seconds",
            "Rerank request latency, queue wait included",
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self._queue_wait = Histogram(
            p + "queue_wait_seconds",
            "Time a request waited for the worker",
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self._batch = Histogram(p + "batch_size", "Pairs per model forward pass", buckets=_BATCH_BUCKETS, registry=reg)
        self._throughput = Gauge(p + "pairs_per_second", "Pairs per second of the last worker round", registry=reg)
        self._rss = Gauge(p + "rss_bytes", "Process resident memory around the model load", ["phase"], registry=reg)
        self._gpu = Gauge(p + "gpu_memory_bytes", "GPU memory held by torch", ["kind"], registry=reg)
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=_WINDOW)
        self.requests = 0
        self.errors = 0
        self.load_count = 0
        self.validated: bool | None = None
        self.pairs_per_second: float | None = None
        self.rss_before: int | None = None
        self.rss_after: int | None = None

    def set_state(self, state: RerankState) -> None:
        self._state.state(state.value)

    def set_load_seconds(self, seconds: float) -> None:
        self._load_seconds.set(seconds)

    def set_warmup_seconds(self, seconds: float) -> None:
        self._warmup_seconds.set(seconds)

    def set_validated(self, ok: bool) -> None:
        self.validated = ok
        self._validated.set(1 if ok else 0)

    def model_loaded(self) -> None:
        with self._lock:
            self.load_count += 1
        self._loads.inc()

    def set_rss(self, phase: str, rss: int) -> None:
        if phase == "before_load":
            self.rss_before = rss
        else:
            self.rss_after = rss
        self._rss.labels(phase).set(rss)

    def set_gpu_memory(self, allocated: int | None, peak: int | None) -> None:
        if allocated is not None:
            self._gpu.labels("allocated").set(allocated)
        if peak is not None:
            self._gpu.labels("peak").set(peak)

    def observe_request(self, seconds: float, ok: bool) -> None:
        with self._lock:
            self.requests += 1
            if ok:
                self._latencies.append(seconds)
            else:
                self.errors += 1
        self._requests.labels("ok" if ok else "error").inc()
        if ok:
            self._latency.observe(seconds)

    def observe_queue_wait(self, seconds: float) -> None:
        self._queue_wait.observe(seconds)

    def observe_batch(self, pairs: int) -> None:
        self._batch.observe(pairs)
        self._pairs.inc(pairs)

    def observe_round(self, pairs: int, seconds: float) -> None:
        if seconds > 0:
            self.pairs_per_second = pairs / seconds
            self._throughput.set(self.pairs_per_second)

    def latency_ms(self) -> dict[str, float | None]:
        with self._lock:
            values = sorted(self._latencies)
        if not values:
            return {"p50": None, "p95": None, "p99": None}
        return {
            name: round(percentile(values, q) * 1000, 2) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "errors": self.errors, "load_count": self.load_count}
