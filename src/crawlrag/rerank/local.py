"""`LocalReranker`: the cross-encoder reranker run in this process.

It composes the parts: the lifecycle loads the model on a background thread at `start()`, the worker thread
scores requests, and `rerank()` only enqueues and awaits, so the event loop never runs inference.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import platformdirs
from prometheus_client import CollectorRegistry

from crawlrag.config import Settings
from crawlrag.rerank.autotune import Autotuner
from crawlrag.rerank.backends import BackendLoader, DefaultBackendLoader
from crawlrag.rerank.batching import default_batch_tokens
from crawlrag.rerank.device import DeviceManager, DeviceRuntime
from crawlrag.rerank.errors import RerankUnavailable
from crawlrag.rerank.hub import HubProbe
from crawlrag.rerank.lifecycle import ModelLifecycle, Serving, process_rss
from crawlrag.rerank.metrics import RerankMetrics
from crawlrag.rerank.state import SERVING, RerankState, StateMachine
from crawlrag.rerank.worker import BatchWorker

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("crawlrag", appauthor=False)) / "rerank-onnx"


class LocalReranker:
    """Cross-encoder reranker; the keyword-only arguments replace its collaborators in tests."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        *,
        device_runtime: DeviceRuntime | None = None,
        backend_loader: BackendLoader | None = None,
        hub_probe: HubProbe | None = None,
        cache_dir: Path | None = None,
        load_backoff_seconds: float = 1.0,
    ) -> None:
        self._settings = settings
        self.metrics = RerankMetrics(registry)
        initial = RerankState.NOT_STARTED if settings.use_reranking else RerankState.DISABLED
        self.metrics.set_state(initial)
        self.state = StateMachine(initial, listener=self.metrics.set_state)
        self._devices = DeviceManager(settings, device_runtime)
        self._cache_dir = cache_dir or default_cache_dir()
        self._loader = backend_loader or DefaultBackendLoader(settings.reranking_max_length, self._cache_dir)
        self._hub = hub_probe
        self._backoff = load_backoff_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._worker: BatchWorker | None = None
        self._serving: Serving | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self._settings.use_reranking

    def start(self) -> None:
        with self._lock:
            if not self.enabled or self._closed or self._thread is not None:
                return
            self.state.transition(RerankState.LOADING, f"loading {self._settings.reranking_model_name}")
            self._thread = threading.Thread(target=self._load, name="crawlrag-rerank-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        lifecycle = ModelLifecycle(
            self._settings,
            state=self.state,
            metrics=self.metrics,
            devices=self._devices,
            loader=self._loader,
            hub=self._hub or HubProbe(),
            stop=self._stop,
            backoff_seconds=self._backoff,
            tuner=Autotuner(
                self._loader,
                max_length=self._settings.reranking_max_length,
                batch_size=self._settings.reranking_batch_size,
                batch_tokens=self._settings.reranking_batch_tokens or default_batch_tokens("cpu"),
                cache_dir=self._cache_dir,
            ),
        )
        lifecycle.run(self._serve)

    def _serve(self, serving: Serving) -> bool:
        with self._lock:
            if self._closed:
                return False
            device = serving.plan.device.device
            worker = BatchWorker(
                serving.backend,
                batch_size=self._settings.reranking_batch_size,
                batch_tokens=self._batch_tokens(serving.plan.device.kind),
                metrics=self.metrics,
                after_large_round=partial(self._after_large_round, device),
            )
            worker.start()
            self._worker, self._serving = worker, serving
            return True

    def _batch_tokens(self, device_kind: str) -> int:
        return self._settings.reranking_batch_tokens or default_batch_tokens(device_kind)

    def _after_large_round(self, device: str) -> None:
        # Large batches leave cached blocks behind: give them back and refresh the memory gauges.
        self._devices.cleanup_gpu_memory(device)
        if device != "cpu":
            memory = self._devices.memory(device)
            self.metrics.set_gpu_memory(memory["allocated"], memory["peak"])

    async def wait_ready(self, timeout: float) -> bool:
        """Starts loading if nobody has, then waits up to `timeout` seconds without blocking the loop."""
        if not self.enabled:
            return False
        self.start()
        return await self.state.wait_settled(timeout) in SERVING

    def _submit(self, query: str, passages: Sequence[str]) -> Future[list[float]]:
        state, reason = self.state.snapshot()
        worker = self._worker
        if state not in SERVING or worker is None:
            raise RerankUnavailable(self._unavailable_reason(state, reason))
        return worker.submit(query, list(passages))

    def _unavailable_reason(self, state: RerankState, reason: str | None) -> str:
        if state is RerankState.DISABLED:
            return reason or "reranking is disabled (USE_RERANKING=false)"
        if state is RerankState.NOT_STARTED:
            return "the reranker has not been started"
        if state is RerankState.FAILED:
            return f"the reranking model failed to load: {reason}"
        return f"the reranking model is not ready yet ({state}: {reason})"

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        # wrap_future resolves on whichever loop awaits it; cancelling the await cancels the queued request.
        return await asyncio.wrap_future(self._submit(query, passages))

    def rerank_sync(self, query: str, passages: Sequence[str], *, wait_seconds: float | None = None) -> list[float]:
        """Blocking variant for the CLI; with `wait_seconds`, starts the load and waits for it first."""
        if wait_seconds is not None and self.enabled:
            self.start()
            self.state.wait_settled_sync(wait_seconds)
        if not passages:
            return []
        return self._submit(query, passages).result()

    def status(self) -> dict[str, Any]:
        state, reason = self.state.snapshot()
        serving = self._serving
        plan = serving.plan if serving is not None else None
        metrics = self.metrics
        counts = metrics.counts()
        rss = process_rss()
        before = metrics.rss_before
        return {
            "enabled": self.enabled,
            "state": state.value,
            "model": serving.model if serving else self._settings.reranking_model_name,
            "fallback_used": bool(serving and serving.fallback_used),
            "reason": reason,
            "device": plan.device.device if plan else None,
            "precision": plan.precision if plan else None,
            "backend": plan.backend if plan else None,
            "load_seconds": round(serving.load_seconds, 3) if serving else None,
            "warmup_seconds": round(serving.warmup_seconds, 3) if serving else None,
            "validated": metrics.validated,
            "requests": counts["requests"],
            "errors": counts["errors"],
            "latency_ms": metrics.latency_ms(),
            "rss_mb": round(rss / 2**20, 1),
            "load_count": counts["load_count"],
            # Details beyond the fields search and /health rely on.
            "rss_added_mb": None
            if before is None or metrics.rss_after is None
            else round((metrics.rss_after - before) / 2**20, 1),
            "pairs_per_second": None if metrics.pairs_per_second is None else round(metrics.pairs_per_second, 1),
            "max_length": self._settings.reranking_max_length,
            "batch_size": self._settings.reranking_batch_size,
            "batch_tokens": self._batch_tokens(plan.device.kind) if plan else None,
            "validation": serving.validation.as_dict() if serving and serving.validation else None,
            "device_info": self._devices.info(plan.device) if plan else None,
            "notes": list(plan.notes) if plan else [],
        }

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            worker, serving = self._worker, self._serving
            self._worker = None
        if worker is not None:
            worker.stop()
        if serving is not None:
            serving.backend.close()
            self._devices.cleanup_gpu_memory(serving.plan.device.device)
        self.state.transition(RerankState.DISABLED, "the reranker is closed")
