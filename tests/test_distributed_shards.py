"""Data-parallel training from shards with the encoder online: two gloo ranks on CPU, each with its own
loader streams, stay identical replicas and resume bit for bit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from test_distributed import WORLD_SIZE, free_port
from test_loader import log_without_timing, online_config

from vljepa.data.shards import write_shards
from vljepa.train.distributed import init_distributed
from vljepa.train.trainer import Trainer


def rank_worker(rank: int, port: int, shards: Path, out: Path) -> None:
    """One rank: a straight run, then a run stopped at global step 4 and resumed by a fresh Trainer."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE)
    )
    torch.set_num_threads(1)
    init_distributed(torch.device("cpu"))
    finals = {}
    for name, stop_at in [("straight", None), ("resumed", 4), ("resumed", None)]:
        config = online_config(shards, out / name, out / "cache")
        config.device, config.num_workers = "cpu", 1
        trainer = Trainer(config, progress=False)
        trainer.run(stop_at_global_step=stop_at)
        finals[name] = trainer.model.trained_state_dict()
    torch.save(finals, out / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, clip_manifest) -> tuple[list[dict], Path]:
    out = tmp_path_factory.mktemp("shard_ranks")
    shards = out / "shards"
    write_shards(clip_manifest, shards, max_size=1, progress=False)  # 16 shards among 2 ranks x 1 worker
    context = mp.start_processes(
        rank_worker, args=(free_port(), shards, out), nprocs=WORLD_SIZE, join=False, start_method="fork"
    )
    deadline = time.monotonic() + 600
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two ranks did not finish within 600 s")
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD_SIZE)], out


def test_two_ranks_from_shards_stay_replicas_and_resume_exactly(ranks):
    results, out = ranks
    first, second = results
    for key, value in first["straight"].items():
        assert torch.equal(value, second["straight"][key]), key  # every rank applied the same averaged update
        assert torch.equal(value, first["resumed"][key]) and torch.equal(value, second["resumed"][key]), key
    assert log_without_timing(out / "resumed") == log_without_timing(out / "straight")
    saved = load_file(out / "straight" / "final" / "model.safetensors")
    assert all(torch.equal(saved[key], value) for key, value in first["straight"].items())
