"""Numeric precision chosen from the hardware: bf16 autocast only where the device computes bf16 natively.

bf16 autocast runs matmuls several times faster than fp32 on hardware with bf16 units (CUDA GPUs that
support it; x86 CPUs with AVX512-BF16 or AMX). Without them PyTorch emulates bf16, and a CPU matmul runs
about 100x slower than in fp32 (an AVX2-only AMD EPYC: 1.2 against 128 GFLOP/s). Every config's `bf16`
setting is therefore `auto` by default:
- CUDA: bf16 when the GPU supports it natively;
- CPU: bf16 only when the CPU reports AVX512-BF16 or AMX *and* a probe (a few matmuls, well under a
  second, once per process) finds bf16 not slower than fp32 there: a virtual machine can advertise an
  instruction set and still be slow, and oneDNN can be capped below what the CPU has. The probe runs in a
  child process, so one that crashes or hangs means fp32 with the reason, not a dead run;
- anything else: fp32.
`true` and `false` force the choice; forcing bf16 where the probe finds it slower warns with the
measured slowdown. The choice and its reason are printed once per process and recorded by each run.
"""

from __future__ import annotations

import functools
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from .child_probe import ProbeFailure, run_in_child
from .config_loader import auto_or_bool
from .progress import console

PROBE_SHAPE = (512, 256, 256)  # (m, k, n): about the shape of the tiny predictor's matmuls
_announced: set[str] = set()


def check_bf16_setting(value, key: str = "bf16") -> bool | str:
    return auto_or_bool(value, key, "bf16 where the hardware computes it natively")


@dataclass(frozen=True)
class Precision:
    """The resolved choice: bf16 autocast or plain fp32, and why."""

    bf16: bool
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp32"

    def autocast(self, device_type: str) -> AbstractContextManager:
        return torch.autocast(device_type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def summary(self) -> str:
        return f"precision: {self.name} - {self.reason}"

    def as_dict(self) -> dict:
        return {"precision": self.name, "reason": self.reason, "cpu_capability": cpu_capability()}


def autocast_off(device_type: str) -> AbstractContextManager:
    """A region that computes in its inputs' dtype even inside an autocast one (the losses, in float32)."""
    return torch.autocast(device_type, enabled=False)


def cpu_capability() -> str:
    """PyTorch's dispatch level for CPU kernels, e.g. "AVX2" or "AVX512" (quote it beside any speed figure)."""
    return torch.backends.cpu.get_cpu_capability()


def cpu_bf16_units() -> list[str]:
    """The bf16 instruction sets this CPU reports (empty when bf16 would be emulated)."""
    units = []
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        units.append("AVX512-BF16")
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        units.append("AMX")
    return units


BF16_PROBE_TIMEOUT_S = 60.0  # the probe takes well under a second after torch's import


def bf16_matmul_slowdown(repeats: int = 5) -> float:
    """Time of a bf16 matmul over an fp32 one in this process (< 1: bf16 is faster): fp32 and bf16 interleaved
    and the fastest of each kept, so a busy machine slows both alike."""
    m, k, n = PROBE_SHAPE
    operands = {
        dtype: (torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)) for dtype in (torch.float32, torch.bfloat16)
    }
    fastest = dict.fromkeys(operands, float("inf"))
    with torch.inference_mode():
        for a, b in operands.values():
            a @ b  # the first call pays one-off costs (oneDNN builds its kernel)
        for _ in range(repeats):
            for dtype, (a, b) in operands.items():
                start = time.perf_counter()
                a @ b
                fastest[dtype] = min(fastest[dtype], time.perf_counter() - start)
    return fastest[torch.bfloat16] / fastest[torch.float32]


@functools.cache
def measure_bf16_slowdown() -> float:
    """`bf16_matmul_slowdown` measured in a child process, once per process: an emulation path that crashes or
    hangs raises `ProbeFailure` instead of ending the run."""
    return float(run_in_child(__name__, bf16_matmul_slowdown.__name__, BF16_PROBE_TIMEOUT_S))


def _cpu_precision(setting: bool | str) -> Precision:
    units, capability = cpu_bf16_units(), cpu_capability()
    if setting is False:
        return Precision(False, "bf16=false")
    if not units and setting == "auto":
        return Precision(False, f"this CPU has no native bf16 ({capability})")
    try:
        slowdown = measure_bf16_slowdown()
    except ProbeFailure as failure:
        if setting == "auto":
            return Precision(False, f"the bf16 probe failed on this CPU ({capability}): {failure}")
        _announce(f"[yellow]warning:[/] bf16=true, but the bf16 probe failed ({capability}): {failure}")
        return Precision(True, f"bf16=true ({capability}; the bf16 probe failed)")
    speed = (
        f"a bf16 matmul runs {1 / slowdown:.1f}x as fast as fp32"
        if slowdown <= 1
        else f"a bf16 matmul runs {slowdown:.0f}x slower than fp32"
    )
    reported = " and ".join(units) or "no bf16 instructions"
    if setting == "auto" and slowdown <= 1:
        return Precision(True, f"this CPU computes bf16 natively ({capability}, {reported}; {speed})")
    if setting == "auto":
        return Precision(False, f"this CPU reports {reported} but {speed} ({capability})")
    if slowdown > 1:
        _announce(
            f"[yellow]warning:[/] bf16=true on a CPU without fast bf16 ({capability}, {reported}): {speed}; "
            f"bf16=auto would train in fp32"
        )
    return Precision(True, f"bf16=true ({capability}, {reported}; {speed})")


def resolve_precision(setting: bool | str, device: torch.device | str) -> Precision:
    """The precision a run uses on `device` for the config value `setting` (auto, true or false)."""
    setting = check_bf16_setting(setting)
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_precision(setting)
    if setting != "auto":
        return Precision(setting, f"bf16={str(setting).lower()}")
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return Precision(True, f"{torch.cuda.get_device_name(device)} computes bf16 natively")
    return Precision(False, f"no native bf16 on {device.type}")


def announce_precision(precision: Precision) -> None:
    """Print the choice and its reason, once per process for each distinct choice."""
    _announce(precision.summary())


def _announce(message: str) -> None:
    if message not in _announced:
        _announced.add(message)
        console.print(message)
