"""FSDP (`sharding: fsdp`): two gloo ranks on CPU, each holding half of every trained parameter, take the
single-process step, write the unsharded checkpoint format and resume exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from test_distributed import MICRO_BATCH_SIZES, backward_batch, join_ranks, run_config, run_ranks, tiny_model

from vljepa.errors import ConfigError
from vljepa.model import VLJepa
from vljepa.substrate.optim import apply_gradients, build_adamw
from vljepa.train.distributed import World
from vljepa.train.sharding import full_trained_state, is_sharded, load_optimizer_state, shard_trained_parts
from vljepa.train.trainer import Trainer, parameter_groups

LR = 1e-3


def stepped(micro_batch_size: int | None, world: World = World(), shard: bool = False) -> dict:
    """One AdamW step of the tiny model (a training text model, a learnable temperature) on the global batch:
    the loss, the clipped gradients' norm and the full weights after the step (rank 0's; the others' are empty)."""
    model = tiny_model()
    if shard:
        shard_trained_parts(model)
    optimizer = build_adamw(parameter_groups(model, LR, 0.05), LR)
    loss = backward_batch(model, micro_batch_size, world)
    norm = apply_gradients(model.parameters(), optimizer, None, grad_clip=1.0)
    return {"loss": loss, "norm": norm, "weights": full_trained_state(model), "sharded": is_sharded(model)}


def fsdp_config(manifest: Path, out: Path, cache: Path):
    """`test_distributed`'s two-stage run (frozen text model, micro-batches in stage 2), sharded, with a best/."""
    config = run_config(manifest, out, cache)
    config.sharding = "fsdp"
    config.val_manifest, config.best_metric = str(manifest), "val_caption_top1"
    return config


def rank_worker(rank: int, port: int, manifest: Path, out: Path) -> None:
    """One rank: the single steps, an uninterrupted run, and a run stopped at global step 3 then resumed."""
    world = join_ranks(rank, port)
    steps = {micro_batch_size: stepped(micro_batch_size, world, shard=True) for micro_batch_size in MICRO_BATCH_SIZES}
    cache = out / "cache"
    Trainer(fsdp_config(manifest, out / "straight", cache), progress=False).run()
    Trainer(fsdp_config(manifest, out / "resumed", cache), progress=False).run(stop_at_global_step=3)
    Trainer(fsdp_config(manifest, out / "resumed", cache), progress=False).run()
    torch.save({"steps": steps}, out / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, clip_manifest) -> tuple[list[dict], Path]:
    out = tmp_path_factory.mktemp("fsdp_ranks")
    return run_ranks(rank_worker, clip_manifest, out, seconds=300), out


@pytest.mark.parametrize("micro_batch_size", MICRO_BATCH_SIZES)
def test_a_sharded_step_gives_the_single_process_loss_norm_and_weights(ranks, micro_batch_size):
    expected = stepped(None)  # one process, unsharded, the whole batch of 8 at once
    (first, second), _ = ranks
    assert first["steps"][micro_batch_size]["sharded"] and not expected["sharded"]
    assert second["steps"][micro_batch_size]["weights"] == {}  # gathered to rank 0 alone
    sharded = first["steps"][micro_batch_size]
    assert sharded["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert sharded["norm"] == pytest.approx(expected["norm"], rel=1e-5)  # the global norm, not a shard's
    assert sharded["weights"].keys() == expected["weights"].keys()
    assert any(key.startswith("y_encoder.text_model.") for key in expected["weights"])
    for key, value in expected["weights"].items():
        # atol 1% of the step: AdamW's first step moves a weight by LR x g / (|g| + 1e-8), so a gradient
        # near 1e-8, summed in another order over the shards, moves it differently; measured worst 3.4e-6
        # (a handful of the text model's 10M weights), every other weight within 1e-6
        assert torch.allclose(sharded["weights"][key], value, rtol=0, atol=1e-5), key


def test_a_sharded_run_writes_the_unsharded_format_and_resumes_exactly(ranks, clip_manifest, tmp_path):
    _, out = ranks
    straight, resumed = out / "straight", out / "resumed"
    model = VLJepa.from_pretrained(straight / "final", bf16=False)  # the normal loader, one process, unsharded
    assert not is_sharded(model)
    saved = load_file(straight / "final" / "model.safetensors")
    assert saved.keys() == model.trained_state_dict().keys()
    for key, value in load_file(resumed / "final" / "model.safetensors").items():
        assert torch.equal(value, saved[key]), key  # the same collectives in the same order: bit for bit
    assert (straight / "best" / "model.safetensors").is_file() and (
        straight / "pretrain" / "model.safetensors"
    ).is_file()
    # the same config in one process is unsharded and trains the same weights
    single = Trainer(fsdp_config(clip_manifest, tmp_path / "single", out / "cache"), progress=False)
    assert not is_sharded(single.model)
    expected = load_file(single.run() / "model.safetensors")
    for key, value in expected.items():
        assert torch.allclose(saved[key], value, atol=5e-5), key  # as for data parallelism (test_distributed)


def test_an_optimizer_state_written_sharded_does_not_resume_unsharded():
    model = tiny_model()
    optimizer = build_adamw(parameter_groups(model, LR, 0.05), LR)
    by_name = {"state": {}, "param_groups": [{"params": ["predictor.out_proj.weight"]}]}  # as FSDP writes it
    with pytest.raises(ConfigError, match="^sharding: the checkpoint's optimizer state was written with FSDP"):
        load_optimizer_state(model, optimizer, by_name)
