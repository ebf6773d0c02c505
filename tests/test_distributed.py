"""Data-parallel training: two gloo ranks on CPU give the single-process loss, gradients and weights."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import tiny_model_config
from safetensors.torch import load_file
from test_grad_cache import QUERIES, TARGETS, assert_same_grads, take_grads

from vljepa.config import StageConfig, TrainConfig, XEncoderConfig
from vljepa.core.progress import console
from vljepa.data.feature_cache import FeatureCache, clip_key
from vljepa.data.manifest import load_manifest
from vljepa.model import VLJepa
from vljepa.model.x_encoder import XEncoder
from vljepa.train.distributed import World, init_distributed
from vljepa.train.trainer import Trainer, batch_backward

WORLD_SIZE = 2
MICRO_BATCH_SIZES = (None, 2)  # per rank: the whole slice of 4 at once, or 2 micro-batches of 2


def tiny_model() -> VLJepa:
    """Learnable temperature, a training text model; eval mode (no dropout), so every split computes the same function."""
    torch.manual_seed(0)
    config = tiny_model_config()
    config.learnable_temperature = True
    return VLJepa(config).eval()


def batch_of_tokens(model: VLJepa) -> torch.Tensor:
    """Seeded X-encoder tokens for the global batch of `TARGETS`."""
    return torch.randn(len(TARGETS), 6, model.x_encoder.embed_dim, generator=torch.Generator().manual_seed(1))


def backward_batch(model: VLJepa, micro_batch_size: int | None, world: World = World()) -> float:
    """The global batch's loss, its gradients in `.grad`."""
    tokens = batch_of_tokens(model)
    out = batch_backward(model, lambda rows: tokens[rows], QUERIES, TARGETS, micro_batch_size, nullcontext, world)
    return out.loss.item()


def one_step(micro_batch_size: int | None, world: World = World()) -> tuple[float, dict[str, torch.Tensor]]:
    model = tiny_model()
    return backward_batch(model, micro_batch_size, world), take_grads(model)


def run_config(manifest: Path, out: Path, cache: Path) -> TrainConfig:
    """Two stages (captions; then a mixture with queries, in micro-batches of 2 per rank), frozen text model."""
    config = TrainConfig(
        train_manifest=str(manifest),
        out_dir=str(out),
        cache_dir=str(cache),
        device="cpu",
        bf16=False,
        log_every=1,
        save_every=2,
        model=tiny_model_config(),
        stages=[
            StageConfig(name="pretrain", steps=2, batch_size=8, lr=1e-3),
            StageConfig(
                name="sft",
                steps=2,
                batch_size=8,
                micro_batch_size=2,
                lr=1e-3,
                mixture={"vqa": 0.5, "label": 0.25, "caption": 0.25},
            ),
        ],
    )
    config.model.y_encoder.lr_multiplier = 0.0
    return config


def join_ranks(rank: int, port: int) -> World:
    """In a spawned rank: torchrun's environment for rank `rank` of `WORLD_SIZE`, one thread, the gloo group."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE)
    )
    torch.set_num_threads(1)
    world, _ = init_distributed(torch.device("cpu"))
    return world


def rank_worker(rank: int, port: int, manifest: Path, out: Path) -> None:
    """One rank: the single steps, then a run stopped at global step 3 and resumed by a fresh Trainer; what the
    first Trainer found in the cache, skipped and printed."""
    world = join_ranks(rank, port)
    steps = {micro_batch_size: one_step(micro_batch_size, world) for micro_batch_size in MICRO_BATCH_SIZES}
    config = run_config(manifest, out / "run", out / "cache")  # an empty cache: each rank encodes its share
    with console.capture() as printed:
        first = Trainer(config, progress=False)
    cache = {
        "failed": dict(first.cache.failed),
        "shards": [json.loads(keys.read_text()) for keys in first.cache.directory.glob("*.keys.json")],
        "paths": sorted(s.clip.path for samples in first.samples.values() for s in samples),
        "printed": " ".join(printed.get().split()),  # unwrapped
    }
    stopped = first.run(stop_at_global_step=3)
    trainer = Trainer(config, progress=False)
    final = trainer.run()
    torch.save(
        {
            "steps": steps,
            "stopped": stopped.name,
            "final": final.name,
            "weights": trainer.model.trained_state_dict(),
            "cache": cache,
        },
        out / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_ranks(worker: Callable[..., None], manifest: Path, out: Path, seconds: int = 120) -> list[dict]:
    """Run `worker(rank, port, manifest, out)` in `WORLD_SIZE` processes; what each saved to `out/rank<r>.pt`."""
    # fork: the ranks inherit the imported torch and transformers (spawn re-imports them, ~10 s a process on
    # two busy cores); they use no CUDA and set one thread before any op, as DataLoader workers do
    context = mp.start_processes(
        worker, args=(free_port(), manifest, out), nprocs=WORLD_SIZE, join=False, start_method="fork"
    )
    deadline = time.monotonic() + seconds
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the two ranks did not finish within {seconds} s")
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


def with_a_broken_clip(manifest: Path, out: Path) -> Path:
    """`out/train.jsonl`: the manifest's records (their videos by absolute path) and one whose video is not one."""
    broken = out / "broken.mp4"
    broken.write_bytes(b"not a video " * 100)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    records = [{**r, "video": str(manifest.parent / r["video"])} for r in records]
    path = out / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*records, {"video": str(broken), "caption": "broken"}]))
    return path


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, clip_manifest) -> tuple[list[dict], Path]:
    """What each of the two ranks computed, and their output folder (which holds the manifest they read)."""
    out = tmp_path_factory.mktemp("ranks")
    return run_ranks(rank_worker, with_a_broken_clip(clip_manifest, out), out), out


@pytest.mark.parametrize("micro_batch_size", MICRO_BATCH_SIZES)
def test_two_ranks_give_the_single_process_loss_and_gradients(ranks, micro_batch_size):
    loss, expected = one_step(None)  # one process, the whole batch of 8 at once
    results, _ = ranks
    for result in results:
        rank_loss, grads = result["steps"][micro_batch_size]
        assert rank_loss == pytest.approx(loss, rel=1e-6)
        assert_same_grads(expected, grads, atol=1e-5)  # measured: max |difference| ~2e-6 on gradients up to ~4
    (_, first), (_, second) = (result["steps"][micro_batch_size] for result in results)
    for name in first:  # averaged by an all-reduce: every rank applies the very same update
        assert torch.equal(first[name], second[name]), name


def test_a_two_rank_run_stopped_and_resumed_ends_with_the_single_process_weights(ranks, tmp_path):
    results, out = ranks
    assert [r["stopped"] for r in results] == ["checkpoint"] * WORLD_SIZE and results[0]["final"] == "final"
    single = Trainer(run_config(out / "train.jsonl", tmp_path / "single", out / "cache"), progress=False).run()
    expected, saved = load_file(single / "model.safetensors"), load_file(out / "run" / "final" / "model.safetensors")
    assert expected.keys() == saved.keys()
    for key in expected:
        # measured: max |difference| ~6e-6 after 4 AdamW steps at LR 1e-3; local-only negatives give ~7e-3
        assert torch.allclose(saved[key], expected[key], atol=5e-5), key
        assert torch.equal(results[0]["weights"][key], results[1]["weights"][key]), key
    state = torch.load(out / "run" / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert len(state["rng"]) == WORLD_SIZE  # each rank resumes its own RNG stream
    logs = [
        [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for run in (tmp_path / "single", out / "run")
    ]
    for a, b in zip(*logs, strict=True):  # rank 0 alone wrote the log, once per step despite the resume
        assert (a["global_step"], a["stage"]) == (b["global_step"], b["stage"])
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


def test_each_rank_encodes_its_share_of_the_missing_clips_and_both_skip_the_broken_one(ranks):
    results, out = ranks
    records = load_manifest(out / "train.jsonl")
    broken = records[-1].clip.path
    keys = sorted({clip_key(r.clip) for r in records})  # the missing clips in key order: rank r encodes keys[r::2]
    shares = [[key for key in keys[rank::WORLD_SIZE] if not key.startswith(f"{broken}|")] for rank in range(WORLD_SIZE)]
    assert all(shares)
    for result in results:  # each rank wrote one shard, its share: together every good clip, once
        assert sorted(sorted(shard) for shard in result["cache"]["shards"]) == sorted(shares)
        assert "cannot decode" in result["cache"]["failed"][broken]  # known to both ranks, though one tried it
        assert result["cache"]["paths"] == sorted(r.clip.path for r in records[:-1])  # skipped on both ranks
    printed = [result["cache"]["printed"] for result in results]
    assert "skipped 1 records" in printed[0] and "cannot decode" in printed[0]  # rank 0 names the decoding error
    assert "skipped" not in printed[1]


def test_a_global_batch_splits_into_contiguous_equal_slices():
    assert [World(rank, 2).local_rows(8) for rank in range(2)] == [slice(0, 4), slice(4, 8)]
    with pytest.raises(ValueError, match="batch_size 8 does not divide among 3 ranks"):
        World(0, 3).local_rows(8)


def test_a_read_only_feature_cache_reads_what_another_process_encoded(tmp_path, clip_manifest):
    clips = list(dict.fromkeys(r.clip for r in load_manifest(clip_manifest)))
    encoder = XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4))
    FeatureCache(tmp_path, encoder).tokens(clips[:3], progress=False)  # rank 0
    reader = FeatureCache(tmp_path, encoder)  # another rank, after the barrier
    assert len(reader.tokens(clips, progress=False, encode_missing=False)) == 3
    assert len(reader.failed) == len(clips) - 3 and "not in the feature cache" in next(iter(reader.failed.values()))
