"""Unlabelled clips for encoder pretraining, decoded once into memory, and a resumable batch sampler.

V-JEPA: a video loader draws random clips (with random-resized crops) from VideoMix2M per step.
Ours: every source (a manifest, whose records' videos are used and every other field ignored, or a
folder of videos/images) is decoded once with the same `read_clip` + `preprocess_clip` as the frozen
feature cache, into one float16 tensor held in memory (a 2000-clip world at 32 px is ~100 MB), so a
step costs only the networks. Unlabelled video of the built-in world costs nothing to make, so
`world_clips` renders as many distinct clips as a run needs (of a world seeded apart from the default
one the demo evaluates on) straight into the same tensor, by one process per CPU, without writing
files: a run then sees each clip a few times at most instead of repeating a few thousand for many
epochs. No augmentation: on 32-px clips of small shapes a crop removes the objects, and the masks
already make the task hard. The sampler walks seeded epoch permutations;
its position is one counter, saved with the checkpoint.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..config import XEncoderConfig
from ..core.progress import console, progress_bar
from ..data.clip_source import media_files
from ..data.manifest import ClipRef
from ..data.shards import is_shard_source, load_records
from ..data.video import VideoError, read_clip, sample_indices
from ..data.world import WorldConfig, clip_scene
from ..model.x_encoder import preprocess_clip


def source_clips(source: str | Path) -> list[ClipRef]:
    """The clips of a manifest (.jsonl), of shards (a .tar, a brace pattern, a folder of .tar files) or of every
    video/image under a folder, without repeats."""
    path = Path(source)
    if path.is_dir() and not is_shard_source(path):
        return [ClipRef(str(p)) for p in media_files(path)]
    return list(dict.fromkeys(record.clip for record in load_records(source)))


def load_clips(sources: list[str], config: XEncoderConfig, progress: bool = True) -> torch.Tensor:
    """Preprocessed clips (N, T, C, S, S) float16 of every source; unreadable ones are skipped and reported."""
    clips = list(dict.fromkeys(clip for source in sources for clip in source_clips(source)))
    if not clips:
        raise ValueError(f"no videos found in {sources}")
    videos, failed = [], []
    with progress_bar(f"decoding {len(clips)} clips", len(clips), enabled=progress) as advance:
        for clip in clips:
            try:
                frames = read_clip(clip.path, config.num_frames, clip.start, clip.end)
                videos.append(preprocess_clip(frames, config).to(torch.float16))
            except (VideoError, OSError) as error:
                failed.append(str(error))
            advance()
    if failed:
        console.print(
            f"[yellow]warning:[/] skipped {len(failed)} of {len(clips)} clips that could not be read, e.g. {failed[0]}"
        )
    if not videos:
        raise RuntimeError(f"{sources}: no readable video")
    return torch.stack(videos)


RENDER_CHUNK = 256  # world clips per worker task


def _render_world_chunk(world: WorldConfig, num_frames: int, start: int, stop: int) -> np.ndarray:
    """uint8 frames (stop - start, T, S, S, 3) of training clips start..stop-1, sampled as `read_clip` samples
    a file. NumPy only: a forked worker must not run torch's thread pool, which the parent has started."""
    kept = sample_indices(list(range(world.num_frames)), num_frames, None, None)
    return np.stack([clip_scene(world, "train", index)[1][kept] for index in range(start, stop)])


def render_world_clips(count: int, seed: int, config: XEncoderConfig, progress: bool = True) -> torch.Tensor:
    """`count` preprocessed clips (N, T, C, S, S) float16 of the default world with `seed` (its training
    split's first `count`), sampled to the encoder's frames as `read_clip` samples a file."""
    world = WorldConfig(seed=seed)
    bounds = [(start, min(count, start + RENDER_CHUNK)) for start in range(0, count, RENDER_CHUNK)]
    clips = torch.empty(count, config.num_frames, 3, config.image_size, config.image_size, dtype=torch.float16)
    with (
        progress_bar(f"rendering {count} world clips", count, enabled=progress) as advance,
        ProcessPoolExecutor(max(1, min(os.cpu_count() or 1, len(bounds)))) as pool,
    ):
        frames = pool.map(partial(_render_world_chunk, world, config.num_frames), *zip(*bounds))
        for (start, stop), chunk in zip(bounds, frames):
            for row, clip in enumerate(chunk, start):
                clips[row] = preprocess_clip(torch.from_numpy(clip), config)
            advance(stop - start)
    return clips


def pretraining_clips(
    sources: list[str], world_clips: int, world_seed: int, config: XEncoderConfig, progress: bool = True
) -> torch.Tensor:
    """The clips of every source, then `world_clips` rendered world clips."""
    parts = [load_clips(sources, config, progress)] if sources else []
    if world_clips:
        parts.append(render_world_clips(world_clips, world_seed, config, progress))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class ClipSampler:
    """Batches of clip indices from seeded per-epoch permutations; `drawn` is the whole state."""

    def __init__(self, num_clips: int, seed: int):
        self.num_clips, self.seed, self.drawn = num_clips, seed, 0
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.num_clips)
        return self._order

    def next_batch(self, batch_size: int) -> torch.Tensor:
        positions = range(self.drawn, self.drawn + batch_size)
        self.drawn += batch_size
        return torch.tensor([int(self._permutation(p // self.num_clips)[p % self.num_clips]) for p in positions])

    def state_dict(self) -> dict:
        return {"drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.drawn = state["drawn"]
