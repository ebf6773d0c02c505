"""The optimizer side of every training loop: AdamW parameter groups, learning-rate schedules, the update.

Groups: within each learning rate, matrices get weight decay and norms, biases and scalars do not (the
rule of V-JEPA and of most transformer recipes). A loop may give a prefix of parameter names its own LR
multiplier (VL-JEPA's trainer gives its Y-encoder text model `lr x lr_multiplier`, paper: x0.05). Frozen
parameters (`requires_grad=False`) never enter a group.
Schedules: transformers' own warmup functions, so no loop writes its schedule by hand: `constant` (linear
warmup, then the base LR; the paper's pretraining) and `cosine` (linear warmup, then cosine to zero at
`total_steps`; its SFT). transformers' warmup starts at LR 0 on the first step.
The update: clip the gradient norm, step the optimizer and the schedule, drop the gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

from ..errors import ConfigError

SCHEDULES = ("constant", "cosine")


def decay_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    lr: float,
    weight_decay: float,
    lr_multipliers: dict[str, float] | None = None,
) -> list[dict]:
    """AdamW groups of the trainable parameters: one per (LR, decay) pair. A name starting with a key of
    `lr_multipliers` trains at `lr x` its value; `ndim >= 2` decays, the rest does not."""
    multipliers = lr_multipliers or {}
    buckets: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        scale = next((value for prefix, value in multipliers.items() if name.startswith(prefix)), 1.0)
        decay = weight_decay if parameter.ndim >= 2 else 0.0
        buckets.setdefault((lr * scale, decay), []).append(parameter)
    return [{"params": params, "lr": group_lr, "weight_decay": decay} for (group_lr, decay), params in buckets.items()]


def build_adamw(groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def build_schedule(
    optimizer: torch.optim.Optimizer, schedule: str, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """`constant` or `cosine` (both with linear warmup over `warmup_steps`), from transformers."""
    if schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup_steps)
    if schedule == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    raise ConfigError(f"schedule={schedule!r}: unknown schedule; use {' or '.join(SCHEDULES)}")


def apply_gradients(
    parameters: Iterable[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    grad_clip: float | None,
) -> float:
    """Clip the gradients' norm at `grad_clip` (None: no clipping), step the optimizer and the schedule, then
    drop the gradients. Returns the norm before clipping (0.0 without clipping)."""
    norm = 0.0
    if grad_clip is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(list(parameters), grad_clip))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
