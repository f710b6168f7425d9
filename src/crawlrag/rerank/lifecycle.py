"""Bringing a model up in the background: retries, the fallback chain, validation and warm-up.

`ModelLifecycle.run` drives the state machine loading → validating → warming → ready | degraded | failed and
never raises: whatever goes wrong ends in FAILED with the reason, and search carries on without reranking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from crawlrag.config import Settings
from crawlrag.rerank.autotune import Autotuner
from crawlrag.rerank.backends import BackendLoader, BackendPlan, ScoringBackend, onnx_available, plan_backend
from crawlrag.rerank.device import CPU, DeviceManager
from crawlrag.rerank.errors import ModelLoadError, ValidationFailedError, is_out_of_memory, is_transient
from crawlrag.rerank.health import ValidationResult, validate, warm_up
from crawlrag.rerank.hub import HubProbe, resolve_model_source
from crawlrag.rerank.metrics import RerankMetrics
from crawlrag.rerank.state import IllegalTransition, RerankState, StateMachine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    """A loaded, checked and warmed model, ready to hand to the worker."""

    backend: ScoringBackend
    model: str
    plan: BackendPlan
    fallback_used: bool
    validation: ValidationResult | None
    load_seconds: float
    warmup_seconds: float


class _Closed(Exception):
    """close() was called while loading: stop quietly."""


def process_rss() -> int:
    return int(psutil.Process().memory_info().rss)


class ModelLifecycle:
    def __init__(
        self,
        settings: Settings,
        *,
        state: StateMachine,
        metrics: RerankMetrics,
        devices: DeviceManager,
        loader: BackendLoader,
        hub: HubProbe,
        stop: threading.Event,
        backoff_seconds: float,
        onnx_ok: Callable[[], bool] = onnx_available,
        tuner: Autotuner | None = None,
    ) -> None:
        self._settings = settings
        self._state = state
        self._metrics = metrics
        self._devices = devices
        self._loader = loader
        self._hub = hub
        self._stop = stop
        self._backoff = backoff_seconds
        self._onnx_ok = onnx_ok
        self._tuner = tuner

    def run(self, serve: Callable[[Serving], bool]) -> Serving | None:
        """Bring up the first model of the chain that works; `serve` starts serving it before READY."""
        try:
            return self._run(serve)
        except _Closed:
            return None
        except IllegalTransition:
            # close() moves the state to DISABLED under the loader's feet; any other cause is a bug to report.
            if not self._stop.is_set():
                log.exception("reranker state machine misused")
            return None
        except BaseException as exc:  # not even a bug may take the server down: it becomes the failure reason
            log.exception("reranker load crashed")
            self._state.transition(RerankState.FAILED, f"unexpected error while loading: {exc}")
            return None

    def _run(self, serve: Callable[[Serving], bool]) -> Serving | None:
        settings = self._settings
        self._metrics.set_rss("before_load", process_rss())
        try:
            plan = plan_backend(settings, self._devices, self._onnx_ok())
        except Exception as exc:
            self._state.transition(RerankState.FAILED, f"no device could be prepared for the reranker: {exc}")
            return None
        for note in plan.notes:
            log.info("reranker: %s", note)
        primary = settings.reranking_model_name
        chain = list(dict.fromkeys([primary, *settings.reranking_fallback_models]))
        failures: list[str] = []
        for name in chain:
            self._move(RerankState.LOADING, f"loading {name}")
            try:
                serving = self._bring_up_anywhere(name, plan, fallback=name != primary)
            except _Closed:
                raise
            except Exception as exc:
                log.warning("reranking model %s unusable: %s", name, exc)
                failures.append(f"{name}: {exc}")
                continue
            return self._announce(serving, failures, serve)
        self._state.transition(RerankState.FAILED, "no reranking model could be loaded: " + "; ".join(failures))
        return None

    def _announce(self, serving: Serving, failures: list[str], serve: Callable[[Serving], bool]) -> Serving | None:
        device = serving.plan.device
        self._metrics.set_rss("after_load", process_rss())
        if device.kind != "cpu":
            memory = self._devices.memory(device.device)
            self._metrics.set_gpu_memory(memory["allocated"], memory["peak"])
        if self._stop.is_set() or not serve(serving):
            serving.backend.close()
            return None
        if serving.fallback_used:
            reason = f"serving fallback {serving.model} because " + "; ".join(failures)
            self._state.transition(RerankState.DEGRADED, reason)
        else:
            self._state.transition(RerankState.READY, None)
        log.info(
            "reranker %s: %s on %s (%s, %s), loaded in %.1fs, warmed in %.1fs",
            self._state.state, serving.model, device.device, serving.plan.backend, serving.plan.precision,
            serving.load_seconds, serving.warmup_seconds,
        )  # fmt: skip
        return serving

    def _bring_up_anywhere(self, name: str, plan: BackendPlan, *, fallback: bool) -> Serving:
        """`_bring_up` on the planned device, and once more on CPU if the GPU ran out of memory."""
        plan = self._tuned(name, plan)
        try:
            return self._bring_up(name, plan, fallback=fallback)
        except _Closed:
            raise
        except Exception as exc:
            if not is_out_of_memory(exc) or plan.device.kind == "cpu":
                raise
            try:
                return self._bring_up(name, self._cpu_plan(plan, name), fallback=fallback)
            except _Closed:
                raise
            except Exception as retry_exc:
                raise ModelLoadError(f"{retry_exc} (on CPU after {exc})") from retry_exc

    def _tuned(self, name: str, plan: BackendPlan) -> BackendPlan:
        """The candidate `auto` measures best, or the static choice when there is nothing to measure or it fails."""
        static = BackendPlan(plan.backend, plan.precision, plan.device, plan.notes, plan.max_length)
        if not plan.candidates or self._tuner is None:
            return static
        self._move(RerankState.LOADING, f"measuring backends for {name}")
        try:
            tuned = self._tuner.tune(resolve_model_source(name, self._hub), plan)
        except Exception as exc:
            log.warning("reranker autotune failed, using %s: %s", plan.label, exc)
            return BackendPlan(plan.backend, plan.precision, plan.device, (*plan.notes, f"autotune failed: {exc}"))
        for note in tuned.notes[len(plan.notes) :]:
            log.info("reranker: %s", note)
        return tuned

    def _cpu_plan(self, plan: BackendPlan, name: str) -> BackendPlan:
        note = f"{plan.device.device} ran out of memory with {name}; moved the reranker to CPU"
        log.warning("reranker: %s", note)
        self._devices.cleanup_gpu_memory(plan.device.device)
        if plan.precision in ("float16", "bfloat16"):
            precision, _ = self._devices.resolve_precision(CPU, plan.precision)
            return plan.on_cpu(precision, note)
        return plan.on_cpu(plan.precision, note)

    def _move(self, state: RerankState, reason: str | None = None) -> None:
        if self._stop.is_set():
            raise _Closed
        self._state.transition(state, reason)

    def _bring_up(self, name: str, plan: BackendPlan, *, fallback: bool) -> Serving:
        if self._state.state is not RerankState.LOADING:
            self._move(RerankState.LOADING, f"loading {name}")
        started = time.perf_counter()
        backend = self._load_with_retries(name, plan)
        load_seconds = time.perf_counter() - started
        self._metrics.model_loaded()
        self._metrics.set_load_seconds(load_seconds)
        try:
            validation = None
            if self._settings.reranking_health_check_enabled:
                self._move(RerankState.VALIDATING, f"checking {name}")
                validation = validate(backend)
                self._metrics.set_validated(validation.ok)
                if not validation.ok:
                    raise ValidationFailedError(validation.reason or "health check failed")
            self._move(RerankState.WARMING, f"warming up {name}")
            warmup_seconds = warm_up(
                backend, self._settings.reranking_warmup_samples, self._settings.reranking_batch_size
            )
            self._metrics.set_warmup_seconds(warmup_seconds)
        except BaseException:
            backend.close()
            self._devices.cleanup_gpu_memory(plan.device.device)
            raise
        self._devices.cleanup_gpu_memory(plan.device.device)
        return Serving(backend, name, plan, fallback, validation, load_seconds, warmup_seconds)

    def _load_with_retries(self, name: str, plan: BackendPlan) -> ScoringBackend:
        attempts = self._settings.reranking_load_retries + 1
        for attempt in range(attempts):
            try:
                return self._loader(resolve_model_source(name, self._hub), plan)
            except Exception as exc:
                if attempt + 1 >= attempts or not is_transient(exc) or is_out_of_memory(exc):
                    raise
                delay = self._backoff * 2**attempt
                log.warning(
                    "loading %s failed (%s); retry %d of %d in %.1fs",
                    name,
                    exc,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                if self._stop.wait(delay):
                    raise _Closed from exc
        raise ModelLoadError("unreachable")  # pragma: no cover
