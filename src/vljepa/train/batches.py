"""Where a training step's batch comes from: the cached feature table, or the loader with the encoder online.

The trainer asks a `BatchSource` for one stage's `StageBatches` and each step takes a `Batch`: the global
batch's samples (every rank's, in rank order, so the loss knows every target) and `visual_tokens(rows)`,
the X-encoder tokens (float32, on the device) of rows of this rank's slice. A stage's batches have a
state dict (the data position) that the checkpoint stores and a resumed run loads before its first batch.
- `CachedSource` (`features: cache`): every clip is encoded once through the feature cache, the tokens sit
  in a `FeatureTable`, and every rank draws the same global batch from a seeded `MixtureSampler` and gathers
  its rows from the table.
- `OnlineSource` (`features: online`): each rank reads its own batches of frames from a `DataLoader` over
  `ClipBatches` (`loader.py`; its workers decode and preprocess), and the frozen encoder runs inside the
  step, under `torch.inference_mode()` and the run's autocast, on the rows asked for (a micro-batch at a
  time with gradient caching, which asks for each micro-batch twice: the encoder then runs twice rather
  than holding the tokens of the whole batch). The tokens are cloned out of inference mode before the
  predictor sees them, so autograd may save them. The ranks exchange only their samples' texts. A frozen
  text model's memo (`YEncoder.memoise`) gets each new target alone as batches bring it, so its values do
  not depend on where a run started (a resumed run equals the uninterrupted one bit for bit). The state
  is the count of batches consumed, the videos that failed to decode (on any rank) and the number of
  loader streams; a resumed run with another number of ranks or workers continues from the same count on
  the new streams (a warning says the order is not the uninterrupted run's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import torch

from ..config import TrainConfig
from ..core.progress import console
from ..data.feature_cache import FeatureCache
from ..data.manifest import load_manifest
from ..data.shards import is_shard_source, shard_list
from ..errors import VljepaError
from ..model.vljepa import VLJepa
from .dataset import FeatureTable, load_samples
from .distributed import World
from .loader import ClipBatches, clip_loader
from .samples import MixtureSampler, Sample


@dataclass
class Batch:
    samples: list[Sample]  # the global batch
    visual_tokens: Callable[[slice], torch.Tensor]  # rows of this rank's slice, numbered in the global batch


class StageBatches(Protocol):
    def next_batch(self) -> Batch: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class BatchSource(Protocol):
    samples: dict[str, list[Sample]] | None  # every training sample, when known before training (cache)

    def stage_batches(self, stage_index: int) -> StageBatches: ...


def resolve_features(config: TrainConfig) -> str:
    """`cache` or `online`: `auto` is `online` for a shard source, `cache` for a JSONL manifest."""
    if config.features != "auto":
        return config.features
    return "online" if is_shard_source(config.train_manifest) else "cache"


def stage_seed(config: TrainConfig, stage_index: int) -> int:
    return config.seed + 1000 * stage_index


class CachedBatches:
    def __init__(self, sampler: MixtureSampler, table: FeatureTable, batch_size: int, device: torch.device):
        self.sampler, self.table, self.batch_size, self.device = sampler, table, batch_size, device

    def next_batch(self) -> Batch:
        samples = self.sampler.next_batch(self.batch_size)
        return Batch(samples, lambda rows: self.table.gather(samples[rows], self.device))

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


class CachedSource:
    """Every training clip's tokens from the feature cache, in one table (each rank encodes its share of the
    missing ones)."""

    def __init__(self, config: TrainConfig, cache: FeatureCache, device: torch.device, progress: bool, world: World):
        self.config, self.device = config, device
        self.samples, self.features, _ = load_samples(
            config.train_manifest, cache, config.model.classification_prompt, progress, world
        )

    def stage_batches(self, stage_index: int) -> CachedBatches:
        stage = self.config.stages[stage_index]
        sampler = MixtureSampler(self.samples, stage.mixture, stage_seed(self.config, stage_index))
        return CachedBatches(sampler, self.features, stage.batch_size, self.device)


class OnlineBatches:
    """A stage's batches from this rank's loader, encoded in the step. The loader starts at the first
    `next_batch`, from the position a `load_state_dict` before it set."""

    def __init__(
        self,
        make_batches: Callable[[int, frozenset[str]], ClipBatches],
        streams: int,
        model: VLJepa,
        world: World,
        autocast: Callable[[], AbstractContextManager],
    ):
        self.make_batches, self.streams = make_batches, streams
        self.model, self.encoder, self.world, self.autocast = model, model.x_encoder, world, autocast
        self.position, self.failed = 0, set()
        self.wait_seconds = 0.0  # time blocked on the loader (the benchmark reads it)
        self._iterator = None

    def next_batch(self) -> Batch:
        if self._iterator is None:
            batches = self.make_batches(self.position, frozenset(self.failed))
            self._iterator = iter(clip_loader(batches, pin_memory=self.encoder.device.type == "cuda"))
        start = time.perf_counter()
        try:
            item = next(self._iterator)
        except VljepaError as error:  # a worker's error comes back with its traceback: keep its own message
            lines = str(error).strip().splitlines()
            if not lines[0].startswith("Caught "):
                raise
            raise type(error)(lines[-1].split(": ", 1)[-1]) from error
        self.wait_seconds += time.perf_counter() - start
        self.position += 1
        for name, error in item["failed"]:
            self.failed.add(name)
            console.print(f"[yellow]warning:[/] skipped a video that cannot be decoded: {error}")
        local: list[Sample] = item["samples"]
        samples = [s for part in self.world.gather_objects(local) for s in part]
        if self.model.y_encoder.frozen_text_model:  # each new target alone: the memo is the same wherever a run began
            for target in sorted({s.target for s in samples}):
                self.model.y_encoder.memoise([target])
        mine = self.world.local_rows(len(samples))
        video = item["video"]

        def visual_tokens(rows: slice) -> torch.Tensor:
            frames = video[rows.start - mine.start : rows.stop - mine.start]
            with torch.inference_mode(), self.autocast():
                tokens = self.encoder(frames.to(self.encoder.device, non_blocking=True))
            return tokens.float().clone()  # out of inference mode: autograd may save it

        return Batch(samples, visual_tokens)

    def state_dict(self) -> dict:
        failed = sorted(set().union(*self.world.gather_objects(self.failed)))
        return {"batches": self.position, "failed": failed, "streams": self.streams}

    def load_state_dict(self, state: dict) -> None:
        self.position, self.failed = state["batches"], set(state["failed"])
        if state["streams"] != self.streams and self.world.is_main:
            console.print(
                f"[yellow]warning:[/] the checkpoint's data came from {state['streams']} loader streams (ranks x "
                f"workers), this run has {self.streams}: it continues after {self.position} batches in another order"
            )


class OnlineSource:
    """Batches of frames from `num_workers` loader processes per rank; the encoder runs in the step."""

    samples = None

    def __init__(
        self, config: TrainConfig, model: VLJepa, world: World, autocast: Callable[[], AbstractContextManager]
    ):
        self.config, self.model, self.world, self.autocast = config, model, world, autocast
        source = config.train_manifest  # checked now: a missing shard or a bad manifest line stops the run at once
        read = (
            f"{len(shard_list(source))} shards" if is_shard_source(source) else f"{len(load_manifest(source))} records"
        )
        if world.is_main:
            console.print(
                f"features: online, the X-encoder runs in each step ({source}: {read}; "
                f"{config.num_workers} loader workers per rank)"
            )

    def stage_batches(self, stage_index: int) -> OnlineBatches:
        config, stage = self.config, self.config.stages[stage_index]

        def make_batches(start_batch: int, failed: frozenset[str]) -> ClipBatches:
            return ClipBatches(
                source=config.train_manifest,
                mixture=stage.mixture,
                batch_size=stage.batch_size // self.world.size,
                seed=stage_seed(config, stage_index),
                prompt=config.model.classification_prompt,
                x_encoder=self.model.x_encoder.config,
                rank=self.world.rank,
                world_size=self.world.size,
                num_workers=config.num_workers,
                shuffle_buffer=config.shuffle_buffer,
                start_batch=start_batch,
                failed=failed,
            )

        streams = self.world.size * max(1, config.num_workers)
        return OnlineBatches(make_batches, streams, self.model, self.world, self.autocast)
