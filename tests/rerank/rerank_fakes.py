"""Test doubles for the reranker: backends, loaders, hub probes and device runtimes that need no torch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from crawlrag.rerank.backends import BackendPlan, ScoringBackend
from crawlrag.rerank.hub import HubProbe, ModelSource


class FakeBackend:
    """Scores a pair by the passage length (or `score`), records every batch, can fail, stall or misbehave."""

    name = "torch"
    precision = "float32"
    device = "cpu"

    def __init__(
        self,
        score: Callable[[str, str], float] | None = None,
        *,
        fail_on: str | None = None,
        gate: threading.Event | None = None,
        delay: float = 0.0,
    ) -> None:
        self.score = score or (lambda query, passage: float(len(passage)))
        self.fail_on = fail_on
        self.gate = gate
        self.delay = delay
        self.calls: list[list[tuple[str, str]]] = []
        self.closed = False
        self.started = threading.Event()

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.calls.append(list(pairs))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            threading.Event().wait(self.delay)
        if self.fail_on is not None and any(self.fail_on in passage for _, passage in pairs):
            raise RuntimeError(f"cannot score {self.fail_on}")
        return [self.score(query, passage) for query, passage in pairs]

    def token_lengths(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        return [len(query) + len(passage) + 3 for query, passage in pairs]  # a "token" per character

    def close(self) -> None:
        self.closed = True


class FakeLoader:
    """Returns (or raises) the next outcome listed for a model name; the last outcome repeats."""

    def __init__(self, outcomes: dict[str, list[ScoringBackend | BaseException]]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, BackendPlan]] = []

    def __call__(self, source: ModelSource, plan: BackendPlan) -> ScoringBackend:
        self.calls.append((source.name, plan))
        queue = self.outcomes[source.name]
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class OnlineHub(HubProbe):
    """A hub that is reachable and a cache that is empty: model names pass through unchanged."""

    def __init__(self) -> None:
        super().__init__(offline=False, endpoint="https://hub.invalid")

    def reachable(self) -> bool:
        return True

    def cached_snapshot(self, repo_id: str) -> Path | None:
        return None


class FakeRuntime:
    """A DeviceRuntime without torch: which GPUs exist, which smoke tests fail, what the CPU supports."""

    def __init__(
        self,
        *,
        cuda: int = 0,
        mps: bool = False,
        broken: Sequence[str] = (),
        cpu_bf16: bool = False,
        gpu_bf16: bool = True,
        fraction_error: Exception | None = None,
    ) -> None:
        self.cuda, self.mps, self.broken = cuda, mps, set(broken)
        self.cpu_bf16, self.gpu_bf16, self.fraction_error = cpu_bf16, gpu_bf16, fraction_error
        self.fractions: list[tuple[str, float]] = []
        self.emptied: list[str] = []

    def cuda_device_count(self) -> int:
        return self.cuda

    def mps_available(self) -> bool:
        return self.mps

    def smoke_test(self, device: str, dtype: str) -> None:
        if device in self.broken:
            raise RuntimeError(f"{device}: no kernel image is available for execution on the device")

    def cpu_bf16_supported(self) -> bool:
        return self.cpu_bf16

    def gpu_bf16_supported(self, device: str) -> bool:
        return self.gpu_bf16

    def set_memory_fraction(self, device: str, fraction: float) -> None:
        if self.fraction_error is not None:
            raise self.fraction_error
        self.fractions.append((device, fraction))

    def device_name(self, device: str) -> str:
        return f"Fake {device}"

    def memory(self, device: str) -> dict[str, int | None]:
        return {"total": 8 * 2**30, "allocated": 2**20, "peak": 2**21}

    def empty_cache(self, device: str) -> None:
        self.emptied.append(device)
