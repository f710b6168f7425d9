"""The state machine itself, the transient-error rule and the backend plan."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from rerank_fakes import FakeRuntime

from crawlrag.config import Settings
from crawlrag.rerank.backends import BackendPlan, plan_backend
from crawlrag.rerank.device import CPU, DeviceManager
from crawlrag.rerank.errors import ModelLoadError, is_out_of_memory, is_transient
from crawlrag.rerank.state import IllegalTransition, RerankState, StateMachine

S = RerankState


def test_illegal_transitions_raise() -> None:
    machine = StateMachine(S.NOT_STARTED)
    with pytest.raises(IllegalTransition):
        machine.transition(S.READY)
    machine.transition(S.LOADING)
    machine.transition(S.FAILED, "broken")
    assert machine.snapshot() == (S.FAILED, "broken") and machine.reason == "broken"
    with pytest.raises(IllegalTransition):
        machine.transition(S.LOADING)
    machine.transition(S.DISABLED, "closed")  # closing is always allowed
    assert machine.state is S.DISABLED


async def test_async_waiters_are_woken_from_another_thread() -> None:
    machine = StateMachine(S.NOT_STARTED)
    machine.transition(S.LOADING)
    waiters = [asyncio.create_task(machine.wait_settled(5)) for _ in range(3)]
    await asyncio.sleep(0.01)
    threading.Timer(0.05, machine.transition, (S.WARMING,)).start()
    threading.Timer(0.1, machine.transition, (S.READY,)).start()
    assert await asyncio.gather(*waiters) == [S.READY] * 3
    assert await machine.wait_settled(0) is S.READY


async def test_async_wait_times_out() -> None:
    machine = StateMachine(S.LOADING)
    assert await machine.wait_settled(0.05) is S.LOADING
    assert machine._waiters == []


def test_sync_wait_and_closed_loop() -> None:
    machine = StateMachine(S.LOADING)
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    machine._waiters.append((loop, future))
    loop.close()  # a caller that gave up: waking it must not break the transition
    threading.Timer(0.05, machine.transition, (S.FAILED, "x")).start()
    assert machine.wait_settled_sync(5) is S.FAILED
    assert StateMachine(S.LOADING).wait_settled_sync(0.01) is S.LOADING


def test_listener_sees_every_state() -> None:
    seen: list[RerankState] = []
    machine = StateMachine(S.NOT_STARTED, listener=seen.append)
    machine.transition(S.LOADING)
    machine.transition(S.WARMING)
    machine.transition(S.DEGRADED, "fallback")
    assert seen == [S.LOADING, S.WARMING, S.DEGRADED]


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionError("reset"), True),
        (TimeoutError(), True),
        (OSError(errno.EBUSY, "busy"), True),
        (OSError(errno.ENOENT, "missing"), False),
        (type("ConnectTimeout", (Exception,), {})(), True),
        (type("HfHubHTTPError", (Exception,), {})("x"), False),
        (ModelLoadError("x", transient=True), True),
        (ModelLoadError("x"), False),
        (ValueError("bad config"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_http_status_decides() -> None:
    def http_error(status: int) -> Exception:
        exc = Exception("http")
        exc.response = SimpleNamespace(status_code=status)  # type: ignore[attr-defined]
        return exc

    assert is_transient(http_error(503)) and is_transient(http_error(429)) and not is_transient(http_error(404))


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(RuntimeError("other"))


@pytest.fixture
def plan(rerank_settings: Callable[..., Settings]) -> Callable[..., BackendPlan]:
    def build(runtime: FakeRuntime | None = None, onnx_ok: bool = True, **overrides: object) -> BackendPlan:
        settings = rerank_settings(**overrides)
        return plan_backend(settings, DeviceManager(settings, runtime or FakeRuntime()), onnx_ok)

    return build


def test_plan_auto(plan: Callable[..., BackendPlan]) -> None:
    auto = {"reranking_backend": "auto", "gpu_preference": "auto"}
    gpu = plan(FakeRuntime(cuda=1), **auto)
    assert (gpu.backend, gpu.precision, gpu.device.device) == ("torch", "bfloat16", "cuda:0")
    old_gpu = plan(FakeRuntime(cuda=1, gpu_bf16=False), **auto)
    assert old_gpu.precision == "float16"
    assert not gpu.candidates  # half precision on a GPU is not measured: it keeps the ranking
    bf16_cpu = plan(FakeRuntime(cpu_bf16=True), **auto)
    assert (bf16_cpu.backend, bf16_cpu.precision) == ("torch", "bfloat16")
    assert [c.label for c in bf16_cpu.candidates] == ["onnx int8", "onnx int8-full", "onnx float32", "torch bfloat16"]
    plain_cpu = plan(FakeRuntime(), **auto)
    assert (plain_cpu.backend, plain_cpu.precision) == ("onnx", "int8")
    assert [c.label for c in plain_cpu.candidates] == ["onnx int8", "onnx int8-full", "onnx float32"]
    no_onnx = plan(FakeRuntime(), onnx_ok=False, **auto)
    assert (no_onnx.backend, no_onnx.precision) == ("torch", "float32")
    explicit = plan(FakeRuntime(cuda=1), gpu_precision="float32", **auto)  # a precision the user set wins
    assert (explicit.backend, explicit.precision) == ("torch", "float32")


def test_plan_explicit_backends(plan: Callable[..., BackendPlan]) -> None:
    torch_plan = plan(FakeRuntime(cpu_bf16=True), reranking_backend="torch")
    assert (torch_plan.backend, torch_plan.precision, torch_plan.device) == ("torch", "float32", CPU)
    half = plan(FakeRuntime(cpu_bf16=False), reranking_backend="torch", gpu_precision="float16")
    assert half.precision == "float32" and "float16 is not used on CPU" in half.notes[0]
    onnx = plan(FakeRuntime(cuda=1), reranking_backend="onnx", gpu_preference="auto")
    assert (onnx.backend, onnx.precision, onnx.device) == ("onnx", "int8", CPU)
    onnx32 = plan(reranking_backend="onnx", gpu_precision="float32")
    assert onnx32.precision == "float32"
    missing = plan(onnx_ok=False, reranking_backend="onnx")
    assert missing.backend == "torch" and "pip install" in missing.notes[0]
    int8 = plan(reranking_backend="auto", reranking_precision="int8-full")
    assert (int8.backend, int8.precision, int8.candidates) == ("onnx", "int8-full", ())
    no_int8 = plan(onnx_ok=False, reranking_backend="auto", reranking_precision="int8")
    assert (no_int8.backend, no_int8.precision) == ("torch", "float32") and "needs the onnx" in no_int8.notes[0]
    onnx_bf16 = plan(reranking_backend="onnx", reranking_precision="bfloat16")
    assert onnx_bf16.precision == "int8" and "not offered" in onnx_bf16.notes[0]
    torch_bf16 = plan(FakeRuntime(cpu_bf16=True), reranking_backend="auto", reranking_precision="bfloat16")
    assert (torch_bf16.backend, torch_bf16.precision, torch_bf16.candidates) == ("torch", "bfloat16", ())
    openvino = plan(FakeRuntime(cpu_bf16=True), reranking_backend="openvino")
    assert openvino.backend == "torch" and "openvino" in openvino.notes[0]
