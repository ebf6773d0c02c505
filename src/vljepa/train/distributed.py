"""Data-parallel training under torchrun, with the contrastive loss over the whole global batch.

Paper: VL-JEPA trains on many GPUs with InfoNCE over large batches (24k image-text pairs in
pretraining, 12k video samples later); the in-batch negatives are the whole global batch, not a GPU's share.
Ours: `torchrun --nproc_per_node=N --no-python vljepa train ...` runs the same trainer as one process
does (without torchrun nothing here communicates). Design decisions:
- The launch is detected from the environment (WORLD_SIZE > 1). The default process group uses nccl on
  CUDA, each rank on cuda:LOCAL_RANK, and gloo on CPU.
- Every rank builds the same seeded `MixtureSampler`, draws the same global batch and runs its contiguous
  slice (so the batch size must divide by the number of ranks). The data order therefore does not depend
  on the number of ranks, and every rank knows every target text (the multi-positive mask) without
  sending strings. A stage's `micro_batch_size` applies per rank, inside its slice.
- `World.gather` concatenates every rank's predicted and target embeddings in rank order, with gradient:
  every rank computes the same InfoNCE over the full B x B batch, which is the single-process loss L. The
  gather's backward sums the gradients that every rank's copy of L sends to this rank's rows, so a rank's
  `.grad` is W x (its rows' share of dL) plus the temperature's dL/dtau, and their average over the W
  ranks is dL exactly: the update equals the single-process update on the global batch.
- The average is an explicit all-reduce after backward (`World.average_gradients`), not a DDP wrapper:
  gradient caching runs the model's parts outside `forward`, twice per step; the frozen X-encoder (and a
  frozen text model) stay out of any wrapper; checkpoint names stay unprefixed; and a parameter unused by
  one rank's slice needs no `find_unused_parameters`. Clipping and AdamW then see identical gradients on
  every rank, so the replicas (identically seeded) stay identical.
- `sharding: fsdp` shards the trained parts (the predictor, the Y-encoder's head, a training text model)
  over the ranks with FSDP2 instead of replicating them (`sharding.py`): FSDP averages their gradients
  itself (a reduce-scatter in backward, overlapped with it), so `average_gradients` skips them and averages
  only the plain trainable parameters left (the learnable temperature). The frozen X-encoder stays whole on
  every rank. The batch split, the gathered loss and the update are the same, so a step still equals the
  single-process step.
- Only rank 0 writes logs, metrics, checkpoints and progress bars. Every rank encodes its share of the
  clips missing from the feature cache (every W-th in key order), the ranks meet, and each reads everyone's
  shards (`train/dataset.py`), so the cache directory must be one that every rank sees; rank 0 alone
  extracts a shard source's videos, before the others read them (`World.main_first`). Validation and the
  best-checkpoint score run on every rank (a sharded forward needs every rank), and rank 0's verdict on
  `best/` is broadcast (`World.main_value`).
Where we differ: without `sharding: fsdp` every rank holds the whole predictor and Y-encoder and gradients
are communicated after backward instead of overlapped with it; every rank computes the full B x B logits
(computing only its own rows against all columns would save memory at 24k; not needed at the sizes we run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor


class _GatherRows(torch.autograd.Function):
    """Every rank's rows, concatenated in rank order; the backward sums, over ranks, the gradients of this
    rank's rows (an all-reduce, which every backend has, then this rank's slice)."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.contiguous()
        parts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, rows)
        start = dist.get_rank() * len(rows)
        ctx.rows = slice(start, start + len(rows))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rows]


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun launch; the default (one process) makes every method a no-op."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def check_batch_size(self, batch_size: int, what: str) -> None:
        if batch_size % self.size:
            raise ValueError(
                f"{what}: batch_size {batch_size} does not divide among {self.size} ranks; every rank "
                f"runs an equal slice of the global batch, so use a multiple of {self.size}"
            )

    def local_rows(self, batch_size: int) -> slice:
        """This rank's contiguous slice of a global batch."""
        self.check_batch_size(batch_size, "the global batch")
        share = batch_size // self.size
        return slice(self.rank * share, (self.rank + 1) * share)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """(B / W, ...) on each rank -> (B, ...) in rank order, with gradient flowing back to each rank's rows."""
        return _GatherRows.apply(rows) if self.size > 1 else rows

    def gather_objects(self, value) -> list:
        """Every rank's `value` (any picklable object), in rank order."""
        if self.size == 1:
            return [value]
        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def main_value(self, value):
        """Rank 0's `value` (any picklable object) on every rank: one decision that every rank follows."""
        if self.size == 1:
            return value
        values = [value]
        dist.broadcast_object_list(values, src=0)
        return values[0]

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block while the others wait; then they run it (e.g. reading what rank 0 wrote)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def check_same(self, value, what: str) -> None:
        """Raise on every rank if `value` differs between ranks (a silent mismatch would train on wrong batches)."""
        values = self.gather_objects(value)
        if any(v != values[0] for v in values):
            raise RuntimeError(f"{what} differs between ranks: {values}")

    def average_gradients(self, model: nn.Module) -> None:
        """Average `.grad` of the trainable parameters over ranks, except FSDP's (DTensor) parameters, whose
        gradients FSDP has already averaged. A parameter without a gradient on some rank gets zeros there; one
        without a gradient on every rank keeps None, as in a single process."""
        parameters = [p for p in model.parameters() if p.requires_grad and not isinstance(p, DTensor)]
        if self.size == 1 or not parameters:
            return
        device = parameters[0].device
        has_grad = torch.tensor([p.grad is not None for p in parameters], dtype=torch.int32, device=device)
        dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
        parameters = [p for p, flag in zip(parameters, has_grad.tolist()) if flag]
        for p in parameters:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for handle in [dist.all_reduce(p.grad, async_op=True) for p in parameters]:
            handle.wait()
        for p in parameters:
            p.grad /= self.size


def init_distributed(device: torch.device) -> tuple[World, torch.device]:
    """This process's `World` and device, from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR/PORT). WORLD_SIZE unset or 1: one process, `device` unchanged. Otherwise a CUDA device
    becomes cuda:LOCAL_RANK, and the default process group is joined (nccl on CUDA, gloo on CPU) unless
    the caller already did."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    world = World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        cuda = device.type == "cuda"
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    if (dist.get_rank(), dist.get_world_size()) != (world.rank, world.size):
        raise RuntimeError(
            f"the process group has rank {dist.get_rank()} of {dist.get_world_size()}, but the "
            f"environment says RANK={world.rank} WORLD_SIZE={world.size}"
        )
    return world, device
