"""Spatio-temporal multi-block masks over the token grid (T/tubelet, H/patch, W/patch).

V-JEPA: per mask generator, one block size (time extent, height, width from a scale and an aspect
ratio) is drawn per batch and `num_blocks` blocks of that size are placed at random in each clip;
the union of the blocks is the target, its complement the context. Blocks span the whole clip in
time (temporal scale 1.0), so the model cannot copy a masked patch from a neighbouring frame: it
must predict large contiguous space-time regions. A clip whose blocks hide everything is redrawn.
Every clip's context and target lists are then cut to the batch's smallest counts so they stack.
Ours: the same sampler (NumPy, seeded per step, so a resumed run draws the same masks). Two
differences, both for small grids: a block as large as the whole grid is shrunk by one row or column
(on a 4x4 grid the 70% "long-range" block can round up to 4x4, which would leave no context), and
the cut keeps a random subset of each clip's indices instead of the first ones (indices run in
time-major order, so keeping the first would drop the last time step's tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..config import XEncoderConfig
from .config import MaskConfig

Grid = tuple[int, int, int]  # (time steps, rows, columns) of tokens
MAX_DRAWS = 20  # redraws of a clip whose blocks hide everything; the last draw uses one block


@dataclass
class Masks:
    """Sorted token indices, the same count in every clip of the batch."""

    context: torch.Tensor  # (B, N_context) long: what the context encoder sees
    target: torch.Tensor  # (B, N_target) long: what the predictor predicts

    def to(self, device: torch.device) -> Masks:
        return Masks(self.context.to(device), self.target.to(device))


def token_grid(config: XEncoderConfig) -> Grid:
    side = config.image_size // config.patch_size
    return config.num_frames // config.tubelet_size, side, side


def block_size(spec: MaskConfig, grid: Grid, rng: np.random.Generator) -> Grid:
    """One block's (time, height, width) in tokens; never the whole grid."""
    duration, height, width = grid
    t = max(1, int(duration * rng.uniform(*spec.temporal_scale)))
    area = height * width * rng.uniform(*spec.spatial_scale)
    ratio = rng.uniform(*spec.aspect_ratio)
    h = min(height, max(1, round(math.sqrt(area * ratio))))
    w = min(width, max(1, round(math.sqrt(area / ratio))))
    size = [t, h, w]
    if size == list(grid):
        largest = max((1, 2, 0), key=lambda axis: size[axis])  # prefer shrinking space over time
        size[largest] -= 1
    return size[0], size[1], size[2]


def target_mask(num_blocks: int, size: Grid, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Boolean (T, H, W): the union of `num_blocks` blocks of `size`, leaving some context."""
    for draw in range(MAX_DRAWS):
        mask = np.zeros(grid, dtype=bool)
        for _ in range(num_blocks if draw < MAX_DRAWS - 1 else 1):
            t, y, x = (int(rng.integers(0, extent - s + 1)) for extent, s in zip(grid, size))
            mask[t : t + size[0], y : y + size[1], x : x + size[2]] = True
        if not mask.all():
            return mask
    raise AssertionError("unreachable: a single block is smaller than the grid")


def _subset(indices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if len(indices) == count:
        return indices
    return np.sort(rng.choice(indices, size=count, replace=False))


def sample_masks(spec: MaskConfig, grid: Grid, batch_size: int, rng: np.random.Generator) -> Masks:
    """One generator's masks for a batch: a shared block size, block positions drawn per clip."""
    size = block_size(spec, grid, rng)
    hidden = [target_mask(spec.num_blocks, size, grid, rng).reshape(-1) for _ in range(batch_size)]
    num_target = min(int(m.sum()) for m in hidden)
    num_context = min(int((~m).sum()) for m in hidden)
    context = [_subset(np.flatnonzero(~m), num_context, rng) for m in hidden]
    target = [_subset(np.flatnonzero(m), num_target, rng) for m in hidden]
    return Masks(torch.from_numpy(np.stack(context)), torch.from_numpy(np.stack(target)))


def step_masks(specs: list[MaskConfig], grid: Grid, batch_size: int, seed: int, step: int) -> list[Masks]:
    """Every generator's masks for training step `step`: a pure function of (seed, step)."""
    return [
        sample_masks(spec, grid, batch_size, np.random.default_rng([seed, step, index]))
        for index, spec in enumerate(specs)
    ]
