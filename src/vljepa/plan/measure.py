"""A real training step's memory on this CPU, measured by PyTorch's memory profiler: what the planner is held to.

The step is the trainer's own: a `VLJepa` with its real text model, `grad_cache_backward` over X-encoder
tokens as the feature cache hands them over, the trainer's AdamW, gradient checkpointing as the trainer
switches it on. The second step is measured (the first makes AdamW's moments). The profiler's allocation
and free events (`torch.profiler`, `profile_memory`), summed in time order, give what the step held at each
moment beyond what was alive when it began; their peak is the step's own. (torch's memory timeline gives the
same peak but categorises every tensor first, which took most of the measurement.) The weights and AdamW's
moments are counted from the model. fp32 only: this is what a CPU without native bf16 runs.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from ..config import ModelConfig, StageConfig, TrainConfig
from ..model.vljepa import VLJepa
from ..train.grad_cache import grad_cache_backward
from ..train.trainer import build_optimizer, enable_gradient_checkpointing


@dataclass(frozen=True)
class MeasuredStep:
    weights: int  # every parameter, fp32
    adamw_moments: int
    step_peak: int  # the most the step held at once beyond what was alive before it

    @property
    def total(self) -> int:
        return self.weights + self.adamw_moments + self.step_peak


def target_texts(model: VLJepa, count: int, tokens: int) -> list[str]:
    """`count` texts that the Y-encoder's tokenizer reads as exactly `tokens` tokens (with its specials). They
    are equal, so every pair is a positive: the loss's values change, its memory does not."""
    specials = len(model.y_encoder.text_model.tokenizer("").input_ids)
    text = " ".join(["video"] * (tokens - specials))
    if len(model.y_encoder.text_model.tokenizer(text).input_ids) != tokens:
        raise ValueError(f"cannot write a text of {tokens} tokens for this tokenizer")
    return [text] * count


def _profiled_peak(step) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]"
    )
    held = np.cumsum([size for _, size in events], dtype=np.int64)
    return int(max(held.max(), 0)) if len(held) else 0


def measure_step(
    model_config: ModelConfig, micro_batch: int, batch: int, text_tokens: int, checkpointing: bool, seed: int = 0
) -> MeasuredStep:
    """One query-free training step of `batch` samples, `micro_batch` at a time, with targets of `text_tokens`."""
    torch.manual_seed(seed)
    model = VLJepa(model_config)
    if checkpointing:
        enable_gradient_checkpointing(model)
    model.train()
    stage = StageConfig(
        name="measure", steps=2, batch_size=batch, micro_batch_size=micro_batch, mixture={"caption": 1.0}
    )
    optimizer = build_optimizer(model, stage, TrainConfig(model=model_config, stages=[stage]))
    x = model_config.x_encoder
    tokens = torch.randn(batch, x.num_frames // x.tubelet_size * (x.image_size // x.patch_size) ** 2, x.hidden_size)
    targets = target_texts(model, batch, text_tokens)

    def step() -> None:
        grad_cache_backward(model, lambda rows: tokens[rows], [None] * batch, targets, micro_batch, nullcontext)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # AdamW's moments
    step()  # and whatever a first step leaves behind (the profiler cannot size what was made before it)
    trained = [p for p in model.parameters() if p.requires_grad]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return MeasuredStep(weights, 2 * sum(p.numel() * p.element_size() for p in trained), _profiled_peak(step))
