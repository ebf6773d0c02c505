"""The input pipeline: streams split the data once per epoch, workers keep a fixed batch order, the mixture
holds, and online training from shards resumes bit for bit."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import webdataset as wds
from conftest import tiny_model_config
from safetensors.torch import load_file

from vljepa.config import StageConfig, TrainConfig, XEncoderConfig, load_train_config
from vljepa.data.shards import ShardError, source_entries, write_shards
from vljepa.data.video import read_clip
from vljepa.errors import ConfigError
from vljepa.model.x_encoder import preprocess_clip
from vljepa.train.batches import resolve_features
from vljepa.train.loader import ClipBatches, clip_loader
from vljepa.train.samples import Sample
from vljepa.train.trainer import Trainer

X_ENCODER = XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, image_size=32, num_frames=4)


@pytest.fixture(scope="module")
def shard_dir(clip_manifest, tmp_path_factory) -> Path:
    """The 16 clips of `clip_manifest` (caption, label, question each), one shard each."""
    out = tmp_path_factory.mktemp("shards")
    assert len(write_shards(clip_manifest, out, max_size=1, progress=False)) == 16
    return out


def clip_batches(source: Path, **settings) -> ClipBatches:
    defaults = {"mixture": {"caption": 1.0}, "batch_size": 4, "seed": 0, "prompt": "what?", "x_encoder": X_ENCODER}
    return ClipBatches(source=str(source), **{**defaults, **settings})


@pytest.mark.parametrize("world_size, workers", [(1, 0), (2, 2), (3, 2), (2, 9)])
@pytest.mark.parametrize("source", ["shards", "manifest"])
def test_each_sample_goes_to_exactly_one_stream_per_epoch(shard_dir, clip_manifest, source, world_size, workers):
    """16 shards among 1, 4 or 6 streams: whole shards; among 18 streams (or a manifest): every S-th sample."""
    path = shard_dir if source == "shards" else clip_manifest
    batches = clip_batches(path, world_size=world_size, num_workers=workers)
    everything = sorted(entry.video.name for entry in source_entries(path))
    assert len(everything) == 16
    orders = []
    for epoch in range(3):
        streams = [[e.video.name for e in batches.epoch_entries(epoch, s)] for s in range(batches.streams)]
        assert sorted(itertools.chain(*streams)) == everything
        orders.append(list(itertools.chain(*streams)))
    assert len({tuple(order) for order in orders}) == (
        1 if source == "manifest" else 3
    )  # shards: reshuffled each epoch


def test_the_mixture_holds_and_workers_give_the_fixed_batch_order_from_any_start(shard_dir, clip_manifest):
    """Batch k comes from stream k mod W; a loader started at batch n yields batches n, n + 1, ... of that order."""
    settings = {"mixture": {"caption": 0.5, "vqa": 0.3, "label": 0.2}, "batch_size": 10, "shuffle_buffer": 3}
    expected = clip_batches(shard_dir, num_workers=2, **settings)
    streams = [expected.batches(stream, skip=0) for stream in range(2)]
    order = [next(streams[k % 2]) for k in range(20)]
    kinds = Counter(s.kind for batch in order for s in batch["samples"])
    assert sum(kinds.values()) == 200 and abs(kinds["caption"] - 100) < 20 and abs(kinds["vqa"] - 60) < 20
    assert abs(kinds["label"] - 40) < 20  # drawn by the mixture weights, not by the data's equal thirds
    originals = {e.key: e.video.path for e in source_entries(clip_manifest)}
    sample, frames = order[0]["samples"][0], order[0]["video"][0]
    original = originals[Path(sample.clip.path).stem]
    assert torch.equal(frames, preprocess_clip(read_clip(original, 4, sample.clip.start, sample.clip.end), X_ENCODER))
    from_manifest = next(iter(clip_batches(clip_manifest)))  # a .jsonl reads its video files the same way
    sample = from_manifest["samples"][0]
    frames = preprocess_clip(read_clip(sample.clip.path, 4, sample.clip.start, sample.clip.end), X_ENCODER)
    assert torch.equal(from_manifest["video"][0], frames)
    for start in (0, 3):
        loader = clip_loader(clip_batches(shard_dir, num_workers=2, start_batch=start, **settings), pin_memory=False)
        for got, want in zip(loader, order[start : start + 4]):
            assert got["samples"] == want["samples"] and torch.equal(got["video"], want["video"])


def test_piped_shards_give_the_local_batches_and_resume_the_same(shard_dir):
    """The same shards through `pipe:cat`: the same samples and frames batch by batch, and a loader started at
    batch n (its workers replaying their streams from the start) continues exactly."""
    piped = f"pipe:cat {shard_dir}/{{00000..00015}}.tar"
    settings = {"mixture": {"caption": 0.5, "vqa": 0.3, "label": 0.2}, "batch_size": 6, "shuffle_buffer": 3}
    local = clip_batches(shard_dir, num_workers=2, **settings)
    streams = [local.batches(stream, skip=0) for stream in range(2)]
    order = [next(streams[k % 2]) for k in range(6)]

    def unpiped(batch: dict) -> list[Sample]:  # a streamed video's name is its URL's, `pipe:cat ` + the path
        return [replace(s, clip=replace(s.clip, path=s.clip.path.removeprefix("pipe:cat "))) for s in batch["samples"]]

    loader = clip_loader(clip_batches(piped, num_workers=2, start_batch=3, **settings), pin_memory=False)
    for got, want in zip(loader, order[3:], strict=False):
        assert unpiped(got) == want["samples"] and torch.equal(got["video"], want["video"])
    from_start = clip_batches(piped, num_workers=2, **settings).batches(0, skip=0)
    assert [unpiped(next(from_start)) for _ in range(2)] == [order[0]["samples"], order[2]["samples"]]


def test_a_kind_the_data_lacks_and_a_missing_shard_are_reported(shard_dir, tmp_path):
    write_shards(manifest_without_labels(shard_dir, tmp_path), tmp_path / "nolabels", 10**9, progress=False)
    lacking = clip_batches(tmp_path / "nolabels", mixture={"caption": 0.5, "label": 0.5})
    with pytest.raises(ShardError, match="no 'label' samples in a whole epoch of loader stream 0 of 1"):
        next(iter(lacking))
    with pytest.raises(ShardError, match="nowhere/1.tar: shard not found"):
        clip_batches(tmp_path / "nowhere" / "{1..2}.tar")
    with wds.TarWriter(str(tmp_path / "bad.tar")) as sink:
        sink.write({"__key__": "000000001", "mp4": b"x", "json": json.dumps({"records": [{"caption": 3}]})})
    config = online_config(tmp_path / "bad.tar", tmp_path / "run", tmp_path / "cache")
    config.num_workers = 1
    with pytest.raises(ShardError) as raised:  # raised in a loader worker, reported with its own message
        Trainer(config, progress=False).run()
    assert (
        str(raised.value)
        == f'{tmp_path / "bad.tar"}: sample 000000001 record 0: "caption" must be a non-empty string, got int 3'
    )


def manifest_without_labels(shard_dir: Path, tmp_path: Path) -> Path:
    """The shards' videos and captions only, as a manifest."""
    (tmp_path / "videos").mkdir()
    records = []
    for entry in source_entries(shard_dir):
        path = tmp_path / "videos" / f"{entry.key}.mp4"
        path.write_bytes(entry.video.read())
        records += [{"video": str(path), "caption": r.caption} for r in entry.records if r.caption]
    (tmp_path / "nolabels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path / "nolabels.jsonl"


def online_config(source: Path, out: Path, cache: Path) -> TrainConfig:
    """Two stages from shards, the encoder online, 2 workers; a frozen text model keeps the steps cheap."""
    config = TrainConfig(
        train_manifest=str(source),
        val_manifest=None,
        out_dir=str(out),
        cache_dir=str(cache),
        bf16=False,
        log_every=1,
        save_every=100,
        num_workers=2,
        shuffle_buffer=3,
        model=tiny_model_config(),
        stages=[
            StageConfig(name="pretrain", steps=3, batch_size=8, lr=1e-3),
            StageConfig(
                name="sft",
                steps=3,
                batch_size=8,
                lr=1e-3,
                schedule="cosine",
                warmup_steps=1,
                mixture={"vqa": 0.5, "label": 0.25, "caption": 0.25},
            ),
        ],
    )
    config.model.y_encoder.lr_multiplier = 0.0
    return config


def log_without_timing(out: Path) -> list[str]:
    return [line.split('"samples_per_s"')[0] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_online_training_from_shards_resumes_bit_for_bit(shard_dir, tmp_path):
    """Stopped after stage 2's first batch: the resumed loader's worker 0 takes stream 1 and worker 1 replays
    stream 0's first batch without decoding."""
    trainer = Trainer(online_config(shard_dir, tmp_path / "straight", tmp_path / "cache"), progress=False)
    assert trainer.features_from == "online" and trainer.features is None and trainer.samples is None
    straight = trainer.run()
    config = online_config(shard_dir, tmp_path / "run", tmp_path / "cache")
    assert Trainer(config, progress=False).run(stop_at_global_step=4).name == "checkpoint"
    state = torch.load(tmp_path / "run" / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["sampler"] == {"batches": 1, "failed": [], "streams": 2}
    resumed = Trainer(config, progress=False).run()
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert log_without_timing(tmp_path / "run") == log_without_timing(tmp_path / "straight")


def test_features_default_to_the_cache_for_a_manifest_and_online_for_shards():
    assert resolve_features(load_train_config(None, ["train_manifest=world/train.jsonl"])) == "cache"
    assert resolve_features(load_train_config(None, ["train_manifest=data/{00000..00009}.tar"])) == "online"
    assert resolve_features(load_train_config(None, ["train_manifest=a.tar", "features=cache"])) == "cache"
    with pytest.raises(ConfigError, match="features: "):
        load_train_config(None, ["features=streamed"])
