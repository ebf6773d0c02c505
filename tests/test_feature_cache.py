"""The frozen-feature cache filled by several processes at once: every entry holds its own clip's tokens;
its shards and their indexes are written atomically and flushed to disk; rows are read through memory maps.

The writers are separate processes started by a fork server: fresh interpreters like separate runs,
forked from one server that imported torch once (three spawned interpreters would each spend seconds
importing it; plain fork copies the test process's thread pools, which can deadlock the children).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vljepa.config import XEncoderConfig
from vljepa.core.atomic import atomic_directory, atomic_write
from vljepa.data.feature_cache import FeatureCache, clip_key
from vljepa.data.manifest import ClipRef, load_manifest
from vljepa.data.video import read_clip
from vljepa.model.x_encoder import XEncoder
from vljepa.train.dataset import load_samples

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
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["vljepa.data.feature_cache", "vljepa.model.x_encoder"])
    start_together = context.Barrier(len(subsets))
    writers = [context.Process(target=fill, args=(tmp_path, encoder, subset, start_together)) for subset in subsets]
    for writer in writers:
        writer.start()
    try:
        for writer in writers:
            writer.join(timeout=120)
    finally:
        for writer in writers:
            if writer.is_alive():
                writer.kill()
    assert [w.exitcode for w in writers] == [0, 0, 0]

    cache = FeatureCache(tmp_path, encoder)
    cached = cache.tokens(clips, progress=False, encode_missing=False)
    assert not cache.failed and len(cached) == 16
    indexes = [json.loads(keys.read_text()) for keys in cache.directory.glob("shard_*.keys.json")]
    assert len({key for keys in indexes for key in keys}) == 16
    for keys in cache.directory.glob("shard_*.keys.json"):  # every index points at a complete shard
        shard = np.load(keys.with_name(keys.name.replace(".keys.json", ".npy")), mmap_mode="r")
        assert len(shard) == len(json.loads(keys.read_text()))
    own = {c: encoder(encoder.preprocess(read_clip(c.path, 4)).unsqueeze(0))[0] for c in clips}
    for clip in clips:
        assert float((cached[clip].float() - own[clip]).abs().max()) < TOLERANCE, clip.path
    # the check has teeth: most pairs of clips have tokens far apart
    far = [(a, b) for a in clips for b in clips if float((own[a] - own[b]).abs().max()) > 10 * TOLERANCE]
    assert len(far) >= 0.8 * 16 * 15
    assert not list(cache.directory.glob("*.tmp"))


def test_cache_writes_are_flushed_to_disk_with_their_directory(tmp_path, clip_manifest, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    encoder = XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4))
    cache = FeatureCache(tmp_path, encoder)
    cache.tokens(list(dict.fromkeys(r.clip for r in load_manifest(clip_manifest)))[:2], progress=False)
    shard = next(cache.directory.glob("shard_*.npy"))
    keys = shard.with_name(shard.stem + ".keys.json")
    assert sorted(p.name for p in cache.directory.iterdir()) == sorted([shard.name, keys.name])
    temp = rf"\.{os.getpid()}-[0-9a-f]{{8}}\.tmp"
    # the shard, then its index: each flushed under its temp name, renamed, then its directory is flushed
    assert len(synced) == 4 and synced[1] == synced[3] == str(cache.directory)
    assert re.fullmatch(re.escape(str(shard)) + temp, synced[0])
    assert re.fullmatch(re.escape(str(keys)) + temp, synced[2])


def test_a_shard_is_written_every_shard_bytes_and_rows_are_read_through_bounded_maps(tmp_path, clip_manifest):
    encoder = XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4))
    clips = list(dict.fromkeys(r.clip for r in load_manifest(clip_manifest)))
    writer = FeatureCache(tmp_path, encoder, batch_size=3, shard_bytes=1)  # a shard per batch
    written = writer.tokens(clips, progress=False)
    shards = writer.directory.glob("shard_*.npy")
    assert sorted(len(np.load(s, mmap_mode="r")) for s in shards) == [1, 3, 3, 3, 3, 3]  # 16 clips, 3 a batch
    del writer  # and its maps
    reader = FeatureCache(tmp_path, encoder)  # another process: reads the shards' indexes
    reader.reader.max_open = 2
    located = reader.locate(clips, progress=False, encode_missing=False)
    assert len({location.shard for location in located.values()}) == 6
    rows = reader.reader.rows([located[c] for c in clips])
    assert all(torch.equal(rows[i], written[c]) for i, c in enumerate(clips))
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()}
    assert len({m for m in mapped if m.startswith(str(reader.directory))}) == 2  # the two most recently read
    copy = pickle.loads(pickle.dumps(reader.reader))  # a data-loading worker's copy reopens its maps
    assert torch.equal(copy.rows([located[clips[0]]])[0], written[clips[0]])


def test_the_feature_table_holds_locations_and_gathers_the_cached_rows(tmp_path, clip_manifest):
    encoder = XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4))
    cache = FeatureCache(tmp_path, encoder)
    clips = [r.clip for r in load_manifest(clip_manifest)]
    assert cache.missing(clips) == sorted(dict.fromkeys(clips), key=clip_key)  # each clip once, in key order
    by_kind, table, skipped = load_samples(str(clip_manifest), cache, "what happens?", progress=False)
    samples = [s for kind in by_kind.values() for s in kind]
    assert skipped == 0 and len(table.locations) == 16
    (keys,) = cache.directory.glob("*.keys.json")  # one process (rank 0 of 1) encoded every clip, in one shard
    assert len(json.loads(keys.read_text())) == 16 and cache.missing(clips) == []
    assert not [v for v in vars(table).values() if isinstance(v, torch.Tensor)]  # no tokens held
    tokens = cache.tokens([s.clip for s in samples], progress=False)
    gathered = table.gather(samples[::-1], torch.device("cpu"))
    assert gathered.dtype == torch.float32 and gathered.shape == (len(samples), *tokens[samples[0].clip].shape)
    assert all(torch.equal(gathered[i], tokens[s.clip].float()) for i, s in enumerate(samples[::-1]))


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "index.json"
    target.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["index.json"]
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_a_failed_directory_fill_leaves_the_old_directory(tmp_path):
    target = tmp_path / "checkpoint"
    atomic_directory(target, lambda d: (d / "weights").write_text("old"))

    def half_then_fail(directory: Path) -> None:
        (directory / "weights").write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_directory(target, half_then_fail)
    assert (target / "weights").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint"]
