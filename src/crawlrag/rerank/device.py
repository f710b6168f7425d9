"""Which device the reranker runs on, at what precision, and how its memory is reported and released.

`TorchRuntime` is the only code that touches torch's device APIs; tests hand `DeviceManager` a fake runtime
(or `TorchRuntime` a fake torch module) to simulate CUDA, MPS and CPUs with or without bfloat16.
"""

from __future__ import annotations

import gc
import logging
import platform
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import psutil

from crawlrag.config import Settings

log = logging.getLogger(__name__)

DeviceKind = Literal["cuda", "mps", "cpu"]
Precision = Literal["float32", "float16", "bfloat16"]


class DeviceRuntime(Protocol):
    def cuda_device_count(self) -> int: ...  # 0 when CUDA is unavailable
    def mps_available(self) -> bool: ...
    def smoke_test(self, device: str, dtype: Precision) -> None: ...  # raises when the device cannot compute
    def cpu_bf16_supported(self) -> bool: ...
    def gpu_bf16_supported(self, device: str) -> bool: ...
    def set_memory_fraction(self, device: str, fraction: float) -> None: ...
    def device_name(self, device: str) -> str: ...
    def memory(self, device: str) -> dict[str, int | None]: ...  # total, allocated, peak bytes
    def empty_cache(self, device: str) -> None: ...


def _import_torch() -> Any:
    import torch  # deferred: importing torch takes seconds and `import crawlrag.rerank` must stay cheap

    return torch


class TorchRuntime:
    """DeviceRuntime on the real torch (imported on first use) or on an injected stand-in for tests."""

    def __init__(self, torch_module: Any | None = None) -> None:
        self._module = torch_module

    @property
    def torch(self) -> Any:
        if self._module is None:
            self._module = _import_torch()
        return self._module

    def cuda_device_count(self) -> int:
        cuda = self.torch.cuda
        return int(cuda.device_count()) if cuda.is_available() else 0

    def mps_available(self) -> bool:
        mps = getattr(self.torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())

    def smoke_test(self, device: str, dtype: Precision) -> None:
        # is_available() says a driver is present, not that kernels run (wrong arch, busy or broken GPU):
        # run a real matmul and copy the result back, which forces the device to finish.
        torch = self.torch
        a = torch.ones((8, 8), device=device, dtype=getattr(torch, dtype))
        total = float((a @ a).sum().float().cpu().item())
        if total != 512.0:
            raise RuntimeError(f"{device} returned a wrong matmul result ({total} instead of 512)")

    def cpu_bf16_supported(self) -> bool:
        cpu = self.torch.cpu
        machine = platform.machine().lower()
        if machine in ("x86_64", "amd64", "i686"):
            # Only native bf16 (AVX512_BF16 or AMX) is faster than fp32; oneDNN emulates it elsewhere, slowly.
            native = any(
                getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
            )
        else:
            native = bool(self.torch.ops.mkldnn._is_mkldnn_bf16_supported())
        if not native:
            return False
        try:
            self.smoke_test("cpu", "bfloat16")
        except Exception as exc:
            log.info("bfloat16 matmul failed on this CPU: %s", exc)
            return False
        return True

    def gpu_bf16_supported(self, device: str) -> bool:
        if device.startswith("cuda"):
            return bool(self.torch.cuda.is_bf16_supported())
        try:
            self.smoke_test(device, "bfloat16")
        except Exception:
            return False
        return True

    def set_memory_fraction(self, device: str, fraction: float) -> None:
        if device.startswith("cuda"):
            self.torch.cuda.set_per_process_memory_fraction(fraction, _index(device))
        elif device == "mps":
            self.torch.mps.set_per_process_memory_fraction(fraction)

    def device_name(self, device: str) -> str:
        if device.startswith("cuda"):
            return str(self.torch.cuda.get_device_name(_index(device)))
        if device == "mps":
            return "Apple MPS"
        return _cpu_name()

    def memory(self, device: str) -> dict[str, int | None]:
        torch = self.torch
        if device.startswith("cuda"):
            index = _index(device)
            return {
                "total": int(torch.cuda.get_device_properties(index).total_memory),
                "allocated": int(torch.cuda.memory_allocated(index)),
                "peak": int(torch.cuda.max_memory_allocated(index)),
            }
        if device == "mps":
            return {
                "total": int(torch.mps.recommended_max_memory()),
                "allocated": int(torch.mps.current_allocated_memory()),
                "peak": None,
            }
        return {"total": int(psutil.virtual_memory().total), "allocated": None, "peak": None}

    def empty_cache(self, device: str) -> None:
        if device.startswith("cuda"):
            self.torch.cuda.empty_cache()
        elif device == "mps":
            self.torch.mps.empty_cache()


def _cpu_name() -> str:
    # platform.processor() is just "x86_64" on Linux; /proc/cpuinfo has the model name.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


@dataclass(frozen=True)
class DeviceChoice:
    kind: DeviceKind
    device: str  # the torch device string: "cuda:1", "mps" or "cpu"
    bf16_supported: bool | None = None  # None on CPU until asked (it needs torch)
    fallback_reason: str | None = None  # why a preferred GPU was not used
    notes: tuple[str, ...] = field(default_factory=tuple)


CPU = DeviceChoice("cpu", "cpu")

_ORDER: dict[str, tuple[DeviceKind, ...]] = {
    "auto": ("cuda", "mps", "cpu"),
    "cuda": ("cuda", "cpu"),
    "mps": ("mps", "cpu"),
    "cpu": ("cpu",),
}


class DeviceManager:
    def __init__(self, settings: Settings, runtime: DeviceRuntime | None = None) -> None:
        self._settings = settings
        self.runtime: DeviceRuntime = runtime or TorchRuntime()
        self._cpu_bf16: bool | None = None

    def select(self) -> DeviceChoice:
        """The first device in GPU_PREFERENCE order that computes correctly, else CPU with the reasons."""
        failures: list[str] = []
        for kind in _ORDER[self._settings.gpu_preference]:
            if kind == "cpu":
                return DeviceChoice("cpu", "cpu", fallback_reason="; ".join(failures) or None)
            try:
                choice = self._try_gpu(kind)
            except Exception as exc:
                failures.append(f"{kind}: {exc}")
                log.info("reranker not using %s: %s", kind, exc)
                continue
            if choice is not None:
                return replace(choice, fallback_reason="; ".join(failures) or None)
            failures.append(f"{kind}: not available")
        raise AssertionError("the preference order always ends with cpu")  # pragma: no cover

    def _try_gpu(self, kind: DeviceKind) -> DeviceChoice | None:
        runtime = self.runtime
        if kind == "cuda":
            count = runtime.cuda_device_count()
            if count == 0:
                return None
            index = self._settings.gpu_device_index
            if index >= count:
                raise RuntimeError(f"GPU_DEVICE_INDEX={index} but only {count} CUDA device(s) exist")
            device = f"cuda:{index}"
        else:
            if not runtime.mps_available():
                return None
            device = "mps"
        runtime.smoke_test(device, "float32")
        notes: list[str] = []
        try:
            runtime.set_memory_fraction(device, self._settings.gpu_memory_fraction)
        except Exception as exc:  # an old driver or torch without the API: run without the cap, and say so
            notes.append(f"GPU_MEMORY_FRACTION not applied: {exc}")
        return DeviceChoice(kind, device, runtime.gpu_bf16_supported(device), notes=tuple(notes))

    def cpu_bf16_supported(self) -> bool:
        if self._cpu_bf16 is None:
            self._cpu_bf16 = self.runtime.cpu_bf16_supported()
        return self._cpu_bf16

    def resolve_precision(self, choice: DeviceChoice, requested: Precision) -> tuple[Precision, str | None]:
        """The dtype to run at and, when it differs from `requested`, why."""
        if choice.kind == "cpu":
            if requested == "float32":
                return "float32", None
            bf16 = self.cpu_bf16_supported()
            if requested == "float16":
                # fp16 matmuls on CPU are emulated and lose range; bf16 keeps fp32's range at the same size.
                actual: Precision = "bfloat16" if bf16 else "float32"
                return actual, f"float16 is not used on CPU; using {actual}"
            if not bf16:
                return "float32", "this CPU has no native bfloat16; using float32"
            return "bfloat16", None
        if requested == "bfloat16" and not choice.bf16_supported:
            return "float16", f"{choice.device} has no bfloat16 support; using float16"
        return requested, None

    def cleanup_gpu_memory(self, device: str) -> None:
        """Return cached blocks to the driver after load, warm-up and large batches; CPU needs nothing."""
        if device == "cpu":
            return
        gc.collect()
        try:
            self.runtime.empty_cache(device)
        except Exception as exc:
            log.debug("empty_cache on %s failed: %s", device, exc)

    def memory(self, device: str) -> dict[str, int | None]:
        """Total, allocated and peak bytes; errors read as missing values, never as a failed health check."""
        try:
            return self.runtime.memory(device)
        except Exception as exc:
            log.debug("memory info for %s failed: %s", device, exc)
            return {"total": None, "allocated": None, "peak": None}

    def info(self, choice: DeviceChoice) -> dict[str, Any]:
        """Device details for /health."""
        try:
            name = self.runtime.device_name(choice.device)
        except Exception as exc:
            log.debug("device name for %s failed: %s", choice.device, exc)
            name = choice.device
        memory = self.memory(choice.device)
        mib = {key: None if value is None else round(value / 2**20, 1) for key, value in memory.items()}
        return {
            "device": choice.device,
            "name": name,
            "total_memory_mb": mib["total"],
            "allocated_memory_mb": mib["allocated"],
            "peak_memory_mb": mib["peak"],
            "fallback_reason": choice.fallback_reason,
        }
