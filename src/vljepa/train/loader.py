"""The input pipeline of online training: worker processes read shards, decode clips and make batches.

A `ClipBatches` is a torch `IterableDataset` read through a `DataLoader` (`batch_size=None`: each item is
one rank's whole batch, made in a worker). Design decisions:
- Streams. The data is read by S = ranks x max(1, num_workers) independent streams. In epoch e the shards
  are permuted by a generator seeded with (seed, e); stream s reads shards s, s + S, ... of that order.
  With fewer shards than streams (one `.tar`, or a `.jsonl` manifest, which counts as one shard) every
  stream reads every shard and keeps samples s, s + S, ... of the epoch (each stream downloads every
  streamed shard then: give a remote dataset at least as many shards as streams). Either way each sample (one video
  and its records) goes to exactly one stream per epoch. A stream loops over epochs without end, so a
  rank's workers never run dry and the `DataLoader`'s round robin over workers is a fixed order.
- Shuffling. Each stream keeps a buffer of `shuffle_buffer` samples and emits a random one (its own seeded
  generator) as each new one arrives. A sample of a local shard costs the buffer a few numbers (`shards.py`
  keeps its video as a byte range); a sample of a streamed shard (`pipe:`, http) holds its video's bytes,
  so a stream's buffer then holds up to `shuffle_buffer` videos (plus those still queued for a batch).
- Mixture. Each emitted sample's records become per-kind training samples (`samples_from_records`) in
  per-kind queues; a batch draws its kind counts from the stage's mixture weights (a multinomial seeded by
  the batch's index, as `MixtureSampler` does) and takes them from the queues, reading on until each has
  enough. A kind whose share of the data exceeds its weight overflows its queue (`shuffle_buffer` items)
  and is subsampled; kinds of weight 0 are dropped unread. Only then is a clip decoded (PyAV, from its
  byte range) and preprocessed by the X-encoder's own function, so a worker decodes only what trains.
- Exact resume. Batch k of a rank is made by stream k mod W of that rank as its (k div W)-th batch, and its
  content depends only on the seed, the data and which videos failed to decode. The position is the count
  of batches consumed and the names of videos that failed; a resumed loader starts its worker w on stream
  (n + w) mod W and replays that stream's batches before n without decoding (reading tar headers and JSON,
  or reading a streamed shard again from its start), treating the recorded failures as failures, so batch n
  onwards equals the uninterrupted run's. Replay cost grows with the position (a header scan of local
  shards; the consumed bytes of streamed ones, downloaded again; no decoding); a snapshot of the buffers
  would avoid it.
- A video that fails to decode is skipped (the batch takes the next sample of that kind) and reported in the
  batch's `failed`, so the trainer can warn and record it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..config import XEncoderConfig
from ..data.shards import ShardError, VideoEntry, is_shard_source, manifest_entries, read_shard, shard_list
from ..data.video import VideoError
from ..data.video_bytes import VideoBytes, decode_clip
from ..model.x_encoder import preprocess_clip
from .samples import Sample, samples_from_records

MIXTURE_SEED = 1_000_003  # the same stream of kind counts as `MixtureSampler`'s
SHUFFLE_SEED = 7


@dataclass
class ClipBatches(IterableDataset):
    """One rank's batches of `batch_size` training samples with their preprocessed frames, from a shard
    source or a manifest (`source`). Items: {"samples": [Sample], "video": (B, T, 3, S, S) float32,
    "failed": [(name, error) of each video that failed to decode]}."""

    source: str
    mixture: dict[str, float]
    batch_size: int
    seed: int
    prompt: str
    x_encoder: XEncoderConfig
    rank: int = 0
    world_size: int = 1
    num_workers: int = 0
    shuffle_buffer: int = 256
    start_batch: int = 0
    failed: frozenset[str] = frozenset()
    kinds: tuple[str, ...] = field(init=False)
    weights: np.ndarray = field(init=False)
    shards: list[Path | str] = field(init=False)  # local paths or streamed URLs
    _manifest: list[VideoEntry] | None = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = tuple(k for k, w in self.mixture.items() if w > 0)
        weights = np.array([self.mixture[k] for k in self.kinds], dtype=float)
        self.weights = weights / weights.sum()
        # read here, in the main process, so that a missing shard or a bad manifest line stops the run at once
        sharded = is_shard_source(self.source)
        self.shards = shard_list(self.source) if sharded else [Path(self.source)]
        self._manifest = None if sharded else manifest_entries(self.source)

    @property
    def streams(self) -> int:
        return self.world_size * max(1, self.num_workers)

    def _read(self, shard: Path | str) -> Iterator[VideoEntry]:
        return read_shard(shard) if self._manifest is None else iter(self._manifest)

    def epoch_entries(self, epoch: int, stream: int) -> Iterator[VideoEntry]:
        """The samples stream `stream` reads in `epoch`, in order (before shuffling)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        if len(self.shards) >= self.streams:
            for index in order[stream :: self.streams]:
                yield from self._read(self.shards[index])
            return
        position = 0
        for index in order:
            for entry in self._read(self.shards[index]):
                if position % self.streams == stream:
                    yield entry
                position += 1

    def _shuffled(self, stream: int) -> Iterator[tuple[int, VideoEntry]]:
        """(epoch, sample) through the shuffle buffer, epoch after epoch without end."""
        rng = np.random.default_rng([self.seed, SHUFFLE_SEED, stream])
        buffer: list[tuple[int, VideoEntry]] = []
        for epoch in itertools.count():
            read = 0
            for entry in self.epoch_entries(epoch, stream):
                read += 1
                if len(buffer) < self.shuffle_buffer:
                    buffer.append((epoch, entry))
                    continue
                slot = int(rng.integers(len(buffer)))
                yield buffer[slot]
                buffer[slot] = (epoch, entry)
            if not read:
                raise ShardError(
                    f"{self.source}: loader stream {stream} of {self.streams} (ranks x workers) has no samples; "
                    f"use fewer workers or more shards"
                )
            if len(buffer) < self.shuffle_buffer:  # a stream smaller than the buffer: emit its epoch shuffled
                while buffer:
                    yield buffer.pop(int(rng.integers(len(buffer))))

    def batches(self, local_stream: int, skip: int) -> Iterator[dict]:
        """The batches of this rank's stream `local_stream` (batch indices local_stream + j x W), the first
        `skip` of them replayed without decoding and not yielded."""
        workers = max(1, self.num_workers)
        stream = self.rank * workers + local_stream
        entries = self._shuffled(stream)
        queues: dict[str, deque[tuple[Sample, VideoBytes]]] = {k: deque(maxlen=self.shuffle_buffer) for k in self.kinds}
        failed = set(self.failed)

        def next_of(kind: str) -> tuple[Sample, VideoBytes]:
            first_epoch = None
            while not queues[kind]:
                epoch, entry = next(entries)
                first_epoch = epoch if first_epoch is None else first_epoch
                if epoch > first_epoch + 1:
                    raise ShardError(
                        f"{self.source}: no {kind!r} samples in a whole epoch of loader stream {stream} of "
                        f"{self.streams}; the mixture {self.mixture} needs them"
                    )
                for name, samples in samples_from_records(entry.records, self.prompt).items():
                    if name in queues:
                        queues[name].extend((sample, entry.video) for sample in samples)
            return queues[kind].popleft()

        for j in itertools.count():
            index, decode = local_stream + j * workers, j >= skip
            counts = np.random.default_rng([self.seed, MIXTURE_SEED, self.rank, index]).multinomial(
                self.batch_size, self.weights
            )
            chosen, videos, failed_now = [], [], []
            for kind, count in zip(self.kinds, counts):
                taken = 0
                while taken < count:
                    sample, video = next_of(kind)
                    if video.name in failed:
                        continue
                    if decode:
                        try:
                            frames = decode_clip(video, self.x_encoder.num_frames, sample.clip.start, sample.clip.end)
                        except VideoError as error:
                            failed.add(video.name)
                            failed_now.append((video.name, str(error)))
                            continue
                        videos.append(preprocess_clip(frames, self.x_encoder))
                    chosen.append(sample)
                    taken += 1
            if decode:
                yield {"samples": chosen, "video": torch.stack(videos), "failed": failed_now}

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        yield from self.batches((self.start_batch + worker) % workers, (self.start_batch + worker) // workers)


def clip_loader(batches: ClipBatches, pin_memory: bool) -> DataLoader:
    """The `DataLoader` over a rank's `ClipBatches`: its workers, persistent, each a couple of batches ahead."""
    workers = batches.num_workers
    return DataLoader(
        batches,
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers else None,
        pin_memory=pin_memory,
    )
