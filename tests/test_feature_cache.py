"""The frozen-feature cache filled by several processes at once: every entry holds its own clip's tokens.

The writers are forked processes: separate memories and separate cache objects, like separate runs
(forking keeps the test fast; a spawned interpreter spends seconds importing torch).
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import torch

from vljepa.config import XEncoderConfig
from vljepa.data.feature_cache import FeatureCache
from vljepa.data.manifest import ClipRef, load_manifest
from vljepa.data.video import read_clip
from vljepa.x_encoder import XEncoder

TOLERANCE = 1e-2  # float16 storage and batched encoding


def fill(cache_dir: Path, encoder: XEncoder, clips: list[ClipRef], start_together) -> None:
    """Open the cache (reading its index), wait until every writer has, then fill it in two rounds of
    two-clip batches, so that the writers' shards and index updates interleave."""
    cache = FeatureCache(cache_dir, encoder, batch_size=2)
    start_together.wait()
    half = len(clips) // 2
    for part in (clips[:half], clips[half:]):
        tokens = cache.tokens(part, progress=False)
        assert len(tokens) == len(part), cache.failed


def test_three_writers_fill_one_fresh_cache(tmp_path, clip_manifest):
    encoder = XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4))
    clips = list(dict.fromkeys(r.clip for r in load_manifest(clip_manifest)))
    subsets = [clips[0:10], clips[5:16][::-1], clips[0:4] + clips[10:16]]  # overlapping, in different orders
    context = multiprocessing.get_context("fork")
    start_together = context.Barrier(len(subsets))
    writers = [context.Process(target=fill, args=(tmp_path, encoder, subset, start_together)) for subset in subsets]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0, 0]

    cache = FeatureCache(tmp_path, encoder)
    cached = cache.tokens(clips, progress=False, encode_missing=False)
    assert not cache.failed and len(cached) == 16
    assert len(json.loads((cache.directory / "index.json").read_text())) == 16
    own = {c: encoder(encoder.preprocess(read_clip(c.path, 4)).unsqueeze(0))[0] for c in clips}
    for clip in clips:
        assert float((cached[clip].float() - own[clip]).abs().max()) < TOLERANCE, clip.path
    # the check has teeth: most pairs of clips have tokens far apart
    far = [(a, b) for a in clips for b in clips if float((own[a] - own[b]).abs().max()) > 10 * TOLERANCE]
    assert len(far) >= 0.8 * 16 * 15
    assert not list(cache.directory.glob("*.tmp"))
