"""The device a run computes on: `auto` is CUDA when there is one, else the CPU.

The numeric precision on that device is `core/precision.py`'s `resolve_precision`; this module only names the device.
"""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda if available, else cpu; any other name is passed to `torch.device` as is."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
