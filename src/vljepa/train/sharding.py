"""FSDP under torchrun (`sharding: fsdp`): the trained parts' parameters, gradients and AdamW state sharded over ranks.

Paper: trains on many GPUs (`distributed.py`); what this file adds is memory, not a change to the step.
Ours: PyTorch's FSDP2 (`torch.distributed.fsdp.fully_shard`), which keeps each parameter as a DTensor
sharded over the ranks, all-gathers a unit's parameters for its forward (and again for its backward) and
reduce-scatters (averages) its gradients in backward. Design decisions:
- The units: every transformer layer (the classes a transformers model names in `_no_split_modules`:
  the predictor's Llama decoder layers; the text model's layers and embeddings), then the predictor as a
  whole (its projections, token table and final norm), the Y-encoder's head, and the text model when it
  trains (`lr_multiplier > 0`). Each trained part is its own FSDP root: the trainer calls the parts, not
  `VLJepa.forward`. The frozen X-encoder and a frozen text model stay whole on every rank: nothing of
  theirs trains, and the text model's outputs are memoised anyway.
- A trainable parameter outside every unit (the learnable temperature) stays a plain tensor, its gradient
  averaged by `World.average_gradients`, which skips the sharded (DTensor) parameters.
- Gradient caching works unchanged: each micro-batch's backward reduce-scatters into the sharded
  gradients, which accumulate (one reduce-scatter per micro-batch instead of one per step).
- The clipping norm is the global one: `clip_grad_norm_` (`substrate/optim.py`) takes the sharded and the plain
  parameters together and reduces the DTensor gradients' norms across ranks; the norm equals the
  single-process one (tested).
- Checkpoints keep the single-process format: the full, unsharded trained weights are gathered to rank 0
  (`get_model_state_dict` with `full_state_dict`, `cpu_offload`) and written as the same safetensors, so
  `final/` loads with `VLJepa.from_pretrained`; AdamW's state is gathered the same way
  (`get_optimizer_state_dict`, keyed by parameter name). Every rank reads a checkpoint's full weights
  and optimizer state and keeps its shard (`set_model_state_dict`, `set_optimizer_state_dict`).
- With one process the setting does nothing: there is nothing to shard over, and the same config then
  runs on one GPU or many. A checkpoint's optimizer state resumes only with the sharding it was written
  with (a `ConfigError` otherwise); its weights load either way.
Where we differ from a tuned FSDP setup: no mixed-precision policy (bf16 comes from autocast, as without
FSDP), no prefetch tuning, and no sharded (per-rank) checkpoint files.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from transformers import PreTrainedModel

from ..errors import ConfigError
from ..model.vljepa import VLJepa

GATHER_TO_RANK0 = StateDictOptions(full_state_dict=True, cpu_offload=True)
FROM_FULL = StateDictOptions(full_state_dict=True, strict=False)


def layer_classes(part: nn.Module) -> set[str]:
    """The layer classes the transformers models inside `part` declare unsplittable (one FSDP unit each)."""
    return {name for m in part.modules() if isinstance(m, PreTrainedModel) for name in (m._no_split_modules or [])}


def shard_trained_parts(model: VLJepa) -> None:
    """Wrap the predictor, the Y-encoder's head and a training text model (and their layers) with FSDP2."""
    y_encoder = model.y_encoder
    parts = [model.predictor, y_encoder.head] + ([] if y_encoder.frozen_text_model else [y_encoder.text_model])
    for part in parts:
        layers = layer_classes(part)
        for module in part.modules():
            if type(module).__name__ in layers:
                fully_shard(module)
        fully_shard(part)


def is_sharded(model: nn.Module) -> bool:
    return any(isinstance(m, FSDPModule) for m in model.modules())


def full_trained_state(model: VLJepa) -> dict[str, torch.Tensor]:
    """The trained weights, unsharded, on the CPU. Sharded: a collective every rank calls; rank 0 gets them,
    the others an empty dict."""
    if not is_sharded(model):
        return model.trained_state_dict()
    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    return model.trained_part(get_model_state_dict(model, options=options))


def load_full_state(model: VLJepa, state: dict[str, torch.Tensor]) -> None:
    """Load full trained weights (every rank holds them); a sharded model keeps its shard of each."""
    if is_sharded(model):
        set_model_state_dict(model, state, options=FROM_FULL)
    else:
        model.load_state_dict(state, strict=False)


def optimizer_state(model: VLJepa, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state dict; sharded, gathered to rank 0 (a collective) and keyed by parameter name."""
    if not is_sharded(model):
        return optimizer.state_dict()
    return get_optimizer_state_dict(model, optimizer, options=GATHER_TO_RANK0)


def load_optimizer_state(model: VLJepa, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load `optimizer_state`'s dict; one written sharded (keyed by name) loads only into a sharded run and
    the other way round, else a `ConfigError` naming the key."""
    by_name = isinstance(state["param_groups"][0]["params"][0], str)
    if by_name != is_sharded(model):
        written, now = ("with", "without") if by_name else ("without", "with")
        raise ConfigError(
            f"sharding: the checkpoint's optimizer state was written {written} FSDP and this run is {now} it; "
            f"resume with the sharding (and, for fsdp, more than one rank) it was written with"
        )
    if is_sharded(model):
        set_optimizer_state_dict(model, optimizer, state, options=FROM_FULL)
    else:
        optimizer.load_state_dict(state)
