"""AdamW parameter groups and learning-rate schedules.

Groups: the Y-encoder's text model trains at `lr x lr_multiplier` (paper: x0.05); within each,
matrices get weight decay and norms, biases and scalars do not. The frozen X-encoder never appears.
Schedules: constant (pretraining, as the paper) or linear warmup + cosine to zero (SFT).
"""

from __future__ import annotations

import math

import torch

from ..config import StageConfig, TrainConfig
from ..model import VLJepa


def parameter_groups(model: VLJepa, lr: float, weight_decay: float) -> list[dict]:
    multiplier = model.config.y_encoder.lr_multiplier
    buckets: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if name.startswith("x_encoder."):
            raise RuntimeError(f"frozen X-encoder parameter {name} requires grad")
        group_lr = lr * multiplier if name.startswith("y_encoder.text_model.") else lr
        decay = weight_decay if parameter.ndim >= 2 else 0.0
        buckets.setdefault((group_lr, decay), []).append(parameter)
    return [{"params": params, "lr": group_lr, "weight_decay": decay}
            for (group_lr, decay), params in buckets.items()]


def build_optimizer(model: VLJepa, stage: StageConfig, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, stage.lr, config.weight_decay), betas=(0.9, 0.95))


def lr_factor(step: int, stage: StageConfig) -> float:
    if step < stage.warmup_steps:
        return (step + 1) / stage.warmup_steps
    if stage.schedule == "constant":
        return 1.0
    if stage.schedule == "cosine":
        progress = (step - stage.warmup_steps) / max(1, stage.steps - stage.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    raise ValueError(f"unknown schedule {stage.schedule!r}; use constant or cosine")


def build_scheduler(optimizer: torch.optim.Optimizer, stage: StageConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, stage))
