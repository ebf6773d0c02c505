"""`torch.compile` of the predictor's transformer for training steps, where this machine can compile.

Inductor fuses the transformer's small element-wise ops (norms, rotary, activations) into generated
kernels; on a 2-core CPU the demo's fp32 step runs 1.1-1.3x faster after 20-40 s of compiling
(BENCHMARKS.md, "Training throughput"). It pays back only over minutes of training, and on a CPU it needs
a working C++ toolchain, which many laptops lack. The VL-JEPA trainer's `compile` setting is therefore:
- `false` (the default of `vljepa train`): eager, no compiling;
- `auto` (the demo's): compiled when the device is a CPU or a CUDA GPU, the run is a single process, and
  a probe (one tiny function compiled and differentiated in a child process, once per process) succeeds;
  otherwise eager, with the reason printed. A probe that crashes or hangs (a broken toolchain, an inductor
  cache written under another CPU capability) fails in the child, never in the run;
- `true`: compiled; a failing probe is an error that names its cause.
Only gradient-enabled calls (training steps) go through the compiled transformer: evaluation, serving
and the demo's report stay eager, so they never wait for a compile of their own shapes. Shapes are
compiled dynamic (batch size, query length), so stage 2's varied queries do not recompile at each step.
The parameters and the saved weights' names and format are the same either way; their values differ
by float rounding (fused kernels sum in another order).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from .child_probe import ProbeFailure, run_in_child
from .config_loader import auto_or_bool
from .progress import console


def check_compile_setting(value, key: str = "compile") -> bool | str:
    return auto_or_bool(value, key, "compile where this machine can")


@dataclass(frozen=True)
class Compilation:
    """The resolved choice: compile the predictor for training or not, and why."""

    enabled: bool
    reason: str

    def summary(self) -> str:
        return f"compile: {'predictor compiled for training' if self.enabled else 'eager'} - {self.reason}"

    def as_dict(self) -> dict:
        return {"compiled": self.enabled, "compile_reason": self.reason}  # beside the precision's "reason"


COMPILE_PROBE_TIMEOUT_S = 240.0  # a cold inductor compiles the probe in 5-30 s; a hang gives up here


def compile_tiny_function() -> str | None:
    """None when a tiny function compiles, runs and differentiates in this process; else why not (the probe's body,
    run in a child by `probe_compiler`)."""
    try:
        probe = torch.compile(lambda x: (x.sin() * 2.0).sum(), dynamic=False)
        probe(torch.randn(8, requires_grad=True)).backward()
    except Exception as error:  # a missing compiler, headers or backend surfaces as any of several types
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"{type(error).__name__}: {first_line[:200]}"
    return None


@functools.cache
def probe_compiler() -> str | None:
    """None when torch.compile works here; else why not. The probe runs in a child process (once per process), so
    a toolchain or cache that aborts or hangs means eager, not a dead run."""
    try:
        failure = run_in_child(__name__, compile_tiny_function.__name__, COMPILE_PROBE_TIMEOUT_S)
    except ProbeFailure as error:
        failure = str(error)
    return None if failure is None else f"torch.compile does not work on this machine ({failure})"


def resolve_compilation(setting: bool | str, device: torch.device | str, processes: int = 1) -> Compilation:
    """Whether a run compiles its predictor, for the config value `setting` (auto, true or false)."""
    setting = check_compile_setting(setting)
    if setting is False:
        return Compilation(False, "compile=false")
    device = torch.device(device)
    if setting == "auto" and device.type not in ("cpu", "cuda"):
        return Compilation(False, f"compile=auto compiles on CPU and CUDA only, not {device.type}")
    if setting == "auto" and processes > 1:
        return Compilation(False, f"compile=auto compiles single-process runs only ({processes} ranks here)")
    failure = probe_compiler()
    if failure is None:
        return Compilation(True, f"compile={str(setting).lower()}, inductor works here")
    if setting == "auto":
        return Compilation(False, failure)
    raise RuntimeError(f"compile=true: {failure}; set compile=auto or compile=false")


def announce_compilation(compilation: Compilation) -> None:
    console.print(compilation.summary())
