"""Device selection, precision and memory reporting, with torch's backends simulated (no GPU needed)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from rerank_fakes import FakeRuntime

from crawlrag.config import Settings
from crawlrag.rerank.device import CPU, DeviceChoice, DeviceManager, TorchRuntime


@pytest.fixture
def manager(rerank_settings: Callable[..., Settings]) -> Callable[..., DeviceManager]:
    def build(runtime: Any, **overrides: Any) -> DeviceManager:
        return DeviceManager(rerank_settings(**overrides), runtime)

    return build


def test_cuda_unavailable_falls_back_to_cpu(manager: Callable[..., DeviceManager]) -> None:
    choice = manager(FakeRuntime(), gpu_preference="auto").select()
    assert choice.device == "cpu" and choice.fallback_reason == "cuda: not available; mps: not available"


def test_cuda_chosen_with_index_and_memory_fraction(manager: Callable[..., DeviceManager]) -> None:
    runtime = FakeRuntime(cuda=2)
    choice = manager(runtime, gpu_preference="cuda", gpu_device_index=1, gpu_memory_fraction=0.5).select()
    assert choice == DeviceChoice("cuda", "cuda:1", bf16_supported=True)
    assert runtime.fractions == [("cuda:1", 0.5)]


def test_cuda_whose_tensor_op_fails_is_not_used(manager: Callable[..., DeviceManager]) -> None:
    choice = manager(FakeRuntime(cuda=1, mps=True, broken=["cuda:0"]), gpu_preference="auto").select()
    assert choice.device == "mps"
    assert "no kernel image" in (choice.fallback_reason or "")


def test_cuda_index_out_of_range(manager: Callable[..., DeviceManager]) -> None:
    choice = manager(FakeRuntime(cuda=1), gpu_preference="cuda", gpu_device_index=3).select()
    assert choice.device == "cpu" and "GPU_DEVICE_INDEX=3 but only 1" in (choice.fallback_reason or "")


def test_mps_preference(manager: Callable[..., DeviceManager]) -> None:
    assert manager(FakeRuntime(mps=True, cuda=1), gpu_preference="mps").select().device == "mps"
    broken = manager(FakeRuntime(mps=True, broken=["mps"]), gpu_preference="mps").select()
    assert broken.device == "cpu" and (broken.fallback_reason or "").startswith("mps:")


def test_cpu_preference_probes_nothing(manager: Callable[..., DeviceManager]) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"{name} called")

    assert manager(Untouchable(), gpu_preference="cpu").select() == CPU


def test_legacy_gpu_flag_means_cpu(rerank_settings: Callable[..., Settings]) -> None:
    settings = rerank_settings(use_gpu_acceleration="false", gpu_preference="auto")
    assert DeviceManager(settings, FakeRuntime(cuda=1)).select().device == "cpu"


def test_memory_fraction_error_is_a_note(manager: Callable[..., DeviceManager]) -> None:
    choice = manager(FakeRuntime(cuda=1, fraction_error=RuntimeError("old driver")), gpu_preference="cuda").select()
    assert choice.device == "cuda:0" and "GPU_MEMORY_FRACTION not applied: old driver" in choice.notes[0]


@pytest.mark.parametrize(
    ("kind", "bf16", "requested", "expected", "noted"),
    [
        ("cpu", True, "float32", "float32", False),
        ("cpu", True, "bfloat16", "bfloat16", False),
        ("cpu", False, "bfloat16", "float32", True),
        ("cpu", True, "float16", "bfloat16", True),  # never float16 on CPU
        ("cpu", False, "float16", "float32", True),
        ("cuda", True, "bfloat16", "bfloat16", False),
        ("cuda", False, "bfloat16", "float16", True),
        ("cuda", False, "float16", "float16", False),
        ("mps", True, "float32", "float32", False),
    ],
)
def test_precision(
    manager: Callable[..., DeviceManager], kind: str, bf16: bool, requested: str, expected: str, noted: bool
) -> None:
    devices = manager(FakeRuntime(cpu_bf16=bf16))
    choice = CPU if kind == "cpu" else DeviceChoice(kind, kind, bf16_supported=bf16)  # type: ignore[arg-type]
    precision, note = devices.resolve_precision(choice, requested)  # type: ignore[arg-type]
    assert precision == expected and (note is not None) == noted


def test_cleanup_and_info(manager: Callable[..., DeviceManager]) -> None:
    runtime = FakeRuntime(cuda=1)
    devices = manager(runtime)
    devices.cleanup_gpu_memory("cpu")
    devices.cleanup_gpu_memory("cuda:0")
    assert runtime.emptied == ["cuda:0"]
    info = devices.info(DeviceChoice("cuda", "cuda:0", fallback_reason=None))
    assert info["name"] == "Fake cuda:0" and info["total_memory_mb"] == 8192.0 and info["peak_memory_mb"] == 2.0


def test_info_and_cleanup_survive_runtime_errors(manager: Callable[..., DeviceManager]) -> None:
    class Broken(FakeRuntime):
        def device_name(self, device: str) -> str:
            raise RuntimeError("gone")

        def memory(self, device: str) -> dict[str, int | None]:
            raise RuntimeError("gone")

        def empty_cache(self, device: str) -> None:
            raise RuntimeError("gone")

    devices = manager(Broken())
    devices.cleanup_gpu_memory("cuda:0")
    info = devices.info(DeviceChoice("cuda", "cuda:0"))
    assert info["name"] == "cuda:0" and info["total_memory_mb"] is None


# --- TorchRuntime against a simulated torch module ----------------------------------------------------------------


def fake_torch(*, cuda: int = 0, mps: bool = False, failing: tuple[str, ...] = (), avx512_bf16: bool = False) -> Any:
    calls: list[Any] = []

    def ones(shape: Any, device: str, dtype: Any) -> Any:
        if device.split(":")[0] in failing:
            raise RuntimeError(f"{device}: CUDA error: no kernel image is available")
        return torch.ones(shape, dtype=dtype)

    return SimpleNamespace(
        calls=calls,
        ones=ones,
        float32=torch.float32,
        bfloat16=torch.bfloat16,
        float16=torch.float16,
        cuda=SimpleNamespace(
            is_available=lambda: cuda > 0,
            device_count=lambda: cuda,
            is_bf16_supported=lambda: True,
            set_per_process_memory_fraction=lambda f, i: calls.append(("fraction", f, i)),
            get_device_name=lambda i: f"Fake GPU {i}",
            get_device_properties=lambda i: SimpleNamespace(total_memory=16 * 2**30),
            memory_allocated=lambda i: 100,
            max_memory_allocated=lambda i: 200,
            empty_cache=lambda: calls.append("cuda.empty_cache"),
        ),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)),
        mps=SimpleNamespace(
            set_per_process_memory_fraction=lambda f: calls.append(("mps.fraction", f)),
            recommended_max_memory=lambda: 2**30,
            current_allocated_memory=lambda: 10,
            empty_cache=lambda: calls.append("mps.empty_cache"),
        ),
        cpu=SimpleNamespace(_is_avx512_bf16_supported=lambda: avx512_bf16, _is_amx_tile_supported=lambda: False),
        ops=SimpleNamespace(mkldnn=SimpleNamespace(_is_mkldnn_bf16_supported=lambda: True)),
    )


def test_torch_runtime_cuda(manager: Callable[..., DeviceManager]) -> None:
    module = fake_torch(cuda=1)
    runtime = TorchRuntime(module)
    choice = manager(runtime, gpu_preference="auto", gpu_memory_fraction=0.7).select()
    assert choice.device == "cuda:0" and choice.bf16_supported
    assert ("fraction", 0.7, 0) in module.calls
    assert runtime.device_name("cuda:0") == "Fake GPU 0"
    assert runtime.memory("cuda:0") == {"total": 16 * 2**30, "allocated": 100, "peak": 200}
    runtime.empty_cache("cuda:0")
    assert "cuda.empty_cache" in module.calls


def test_torch_runtime_cuda_broken_then_mps(manager: Callable[..., DeviceManager]) -> None:
    module = fake_torch(cuda=1, mps=True, failing=("cuda",))
    runtime = TorchRuntime(module)
    choice = manager(runtime, gpu_preference="auto").select()
    assert choice.device == "mps" and "no kernel image" in (choice.fallback_reason or "")
    assert runtime.device_name("mps") == "Apple MPS"
    assert runtime.memory("mps") == {"total": 2**30, "allocated": 10, "peak": None}
    runtime.empty_cache("mps")
    assert ("mps.fraction", 0.9) in module.calls and "mps.empty_cache" in module.calls


def test_torch_runtime_mps_bf16_probe() -> None:
    assert TorchRuntime(fake_torch(mps=True)).gpu_bf16_supported("mps") is True
    assert TorchRuntime(fake_torch(mps=True, failing=("mps",))).gpu_bf16_supported("mps") is False


def test_torch_runtime_cpu_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TorchRuntime(fake_torch(avx512_bf16=True)).cpu_bf16_supported() is True
    assert TorchRuntime(fake_torch(avx512_bf16=False)).cpu_bf16_supported() is False
    # Native support claimed, but the bf16 matmul fails: not used.
    assert TorchRuntime(fake_torch(avx512_bf16=True, failing=("cpu",))).cpu_bf16_supported() is False
    # On ARM the oneDNN check decides.
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert TorchRuntime(fake_torch()).cpu_bf16_supported() is True


def test_torch_runtime_real_torch_cpu() -> None:
    runtime = TorchRuntime()
    runtime.smoke_test("cpu", "float32")
    memory = runtime.memory("cpu")
    assert memory["total"] > 2**20 and memory["allocated"] is None  # type: ignore[operator]
    assert runtime.device_name("cpu")
    assert isinstance(runtime.cpu_bf16_supported(), bool)
    runtime.empty_cache("cpu")
    runtime.set_memory_fraction("cpu", 0.5)  # nothing to cap on CPU


def test_cpu_name_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no /proc")

    monkeypatch.setattr("builtins.open", missing)
    assert TorchRuntime(fake_torch()).device_name("cpu")


def test_smoke_test_detects_wrong_results() -> None:
    module = fake_torch()
    module.ones = lambda shape, device, dtype: torch.zeros(shape, dtype=dtype)
    with pytest.raises(RuntimeError, match="wrong matmul result"):
        TorchRuntime(module).smoke_test("cpu", "float32")
