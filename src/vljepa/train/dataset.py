"""The training data of a manifest, as the loops read it: samples per kind and the cached X-encoder
tokens of their clips, stacked in one table.

The X-encoder is frozen, so every loop over a manifest (VL-JEPA's stages, the Y-decoder's adaptation, the
token-VLM baseline) reads its clips' tokens from the feature cache once and gathers a batch's rows from
the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.feature_cache import FeatureCache
from ..data.manifest import ClipRef, load_manifest
from ..progress import console
from .samples import Sample, samples_from_records


@dataclass
class FeatureTable:
    """Cached tokens of every usable clip, stacked; `index[clip]` is its row."""

    tokens: torch.Tensor  # (num_clips, N, D) float16
    index: dict[ClipRef, int]

    def gather(self, samples: list[Sample], device: torch.device) -> torch.Tensor:
        rows = torch.tensor([self.index[s.clip] for s in samples])
        return self.tokens[rows].to(device=device, dtype=torch.float32)


def load_samples(
    manifest: str, cache: FeatureCache, prompt: str, progress: bool, main: bool = True
) -> tuple[dict[str, list[Sample]], FeatureTable, int]:
    """Samples of a manifest, the feature table of their clips and the number of records skipped (their
    video could not be read; reported). `main=False` (the other ranks of a torchrun launch): only read what
    rank 0 put in the cache; report nothing."""
    records = load_manifest(manifest)
    tokens = cache.tokens([r.clip for r in records], progress=progress, encode_missing=main)
    usable = [r for r in records if r.clip in tokens]
    if len(usable) < len(records) and main:
        console.print(
            f"[yellow]warning:[/] {manifest}: skipped {len(records) - len(usable)} records whose "
            f"video could not be read ({len(cache.failed)} files), e.g. {next(iter(cache.failed.values()))}"
        )
    if not usable:
        raise RuntimeError(f"{manifest}: no record has a readable video, e.g. {next(iter(cache.failed.values()))}")
    clips = list(dict.fromkeys(r.clip for r in usable))
    table = FeatureTable(torch.stack([tokens[c] for c in clips]), {c: i for i, c in enumerate(clips)})
    return samples_from_records(usable, prompt), table, len(records) - len(usable)
