"""The training data of a manifest, as the loops read it: samples per kind and where the cached X-encoder
tokens of their clips are.

The X-encoder is frozen, so every loop over a manifest (VL-JEPA's stages, the Y-decoder's adaptation, the
token-VLM baseline) has its clips encoded into the feature cache once, then gathers each batch's rows from
the cache's memory-mapped shards. The table holds only (shard, row) per clip, never the tokens: training
memory does not grow with the dataset (the paper's tokens are 8 MB per 32-frame clip). Under torchrun
the ranks share the encoding: each encodes its share of the clips missing from the cache, then reads
everyone's shards (`locate_on_every_rank`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.progress import console
from ..data.feature_cache import FeatureCache, Location, ShardReader
from ..data.manifest import ClipRef
from ..data.shards import load_records
from ..errors import ConfigError
from .distributed import World
from .samples import Sample, samples_from_records


@dataclass
class FeatureTable:
    """Where the cached tokens of every usable clip are; rows are read when a batch gathers them."""

    reader: ShardReader
    locations: dict[ClipRef, Location]

    def tokens(self, samples: list[Sample]) -> torch.Tensor:
        """The samples' clip tokens (len(samples), N, D) float16 on the CPU."""
        return self.reader.rows([self.locations[s.clip] for s in samples])

    def gather(self, samples: list[Sample], device: torch.device) -> torch.Tensor:
        return self.tokens(samples).to(device=device, dtype=torch.float32)


def locate_on_every_rank(
    cache: FeatureCache, clips: list[ClipRef], world: World, progress: bool
) -> dict[ClipRef, Location]:
    """Where the tokens of every clip that decodes are, the same on every rank: each rank encodes its share
    of the clips missing from the cache (every `size`-th of them in key order, from its rank), then reads
    everyone's shards. The ranks meet twice: after listing the missing clips, so that no rank lists them
    after another has started writing (the lists, hence the shares, would differ), and when gathering
    their failures, after which every rank has written its shards and knows each failed clip's decoding
    error. A clip that no rank failed on but a rank cannot find means the ranks do not see the same cache
    folder: a `ConfigError` on every rank."""
    missing = cache.missing(clips)
    world.barrier()
    cache.encode(missing[world.rank :: world.size], progress)
    failed = {path: error for part in world.gather_objects(cache.failed) for path, error in part.items()}
    cache.failed.update(failed)
    located = cache.locate(clips, progress, encode_missing=False)
    unseen = world.gather_objects(sum(c not in located and c.path not in failed for c in dict.fromkeys(clips)))
    if any(unseen):
        raise ConfigError(
            f"cache_dir: the ranks cannot find {unseen} clips (in rank order) that the other ranks encoded "
            f"into {cache.directory}; every rank must see the same folder"
        )
    return located


def load_samples(
    manifest: str, cache: FeatureCache, prompt: str, progress: bool, world: World = World()
) -> tuple[dict[str, list[Sample]], FeatureTable, int]:
    """Samples of a manifest, the feature table of their clips and the number of records skipped (their
    video could not be read; reported by rank 0). Under torchrun every rank calls it and encodes its share
    of the missing clips; rank 0 reads the manifest first, so that it alone extracts a shard source's videos
    (a file that two ranks wrote would have two modification times, so two cache keys)."""
    with world.main_first():
        records = load_records(manifest)
    locations = locate_on_every_rank(cache, [r.clip for r in records], world, progress)
    usable = [r for r in records if r.clip in locations]
    if len(usable) < len(records) and world.is_main:
        console.print(
            f"[yellow]warning:[/] {manifest}: skipped {len(records) - len(usable)} records whose "
            f"video could not be read ({len(cache.failed)} files), e.g. {next(iter(cache.failed.values()))}"
        )
    if not usable:
        raise RuntimeError(f"{manifest}: no record has a readable video, e.g. {next(iter(cache.failed.values()))}")
    table = FeatureTable(cache.reader, {r.clip: locations[r.clip] for r in usable})
    return samples_from_records(usable, prompt), table, len(records) - len(usable)
