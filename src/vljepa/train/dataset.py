"""The training data of a manifest, as the loops read it: samples per kind and where the cached X-encoder
tokens of their clips are.

The X-encoder is frozen, so every loop over a manifest (VL-JEPA's stages, the Y-decoder's adaptation, the
token-VLM baseline) has its clips encoded into the feature cache once, then gathers each batch's rows from
the cache's memory-mapped shards. The table holds only (shard, row) per clip, never the tokens: training
memory does not grow with the dataset (the paper's tokens are 8 MB per 32-frame clip).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.feature_cache import FeatureCache, Location, ShardReader
from ..data.manifest import ClipRef, load_manifest
from ..progress import console
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


def load_samples(
    manifest: str, cache: FeatureCache, prompt: str, progress: bool, main: bool = True
) -> tuple[dict[str, list[Sample]], FeatureTable, int]:
    """Samples of a manifest, the feature table of their clips and the number of records skipped (their
    video could not be read; reported). `main=False` (the other ranks of a torchrun launch): only read what
    rank 0 put in the cache; report nothing."""
    records = load_manifest(manifest)
    locations = cache.locate([r.clip for r in records], progress=progress, encode_missing=main)
    usable = [r for r in records if r.clip in locations]
    if len(usable) < len(records) and main:
        console.print(
            f"[yellow]warning:[/] {manifest}: skipped {len(records) - len(usable)} records whose "
            f"video could not be read ({len(cache.failed)} files), e.g. {next(iter(cache.failed.values()))}"
        )
    if not usable:
        raise RuntimeError(f"{manifest}: no record has a readable video, e.g. {next(iter(cache.failed.values()))}")
    table = FeatureTable(cache.reader, {r.clip: locations[r.clip] for r in usable})
    return samples_from_records(usable, prompt), table, len(records) - len(usable)
