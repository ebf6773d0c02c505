"""The training substrate every loop shares: schedules, parameter groups, the run folder's lock, the
metrics log, and the small faults of the VL-JEPA loop (collapse warning, repeated samples, leftovers)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model_config
from safetensors.torch import load_file
from torch import nn

from vljepa.config import StageConfig, TrainConfig
from vljepa.errors import ConfigError, VljepaError
from vljepa.model import VLJepa
from vljepa.substrate.metrics import MetricsLog, trim_metrics
from vljepa.substrate.optim import apply_gradients, build_adamw, build_schedule, decay_groups
from vljepa.substrate.run_dir import LOCK_FILE, RunDirectory, RunDirectoryInUse
from vljepa.train.trainer import Trainer, collapse_check_from


def _lrs(schedule: str, warmup: int, total: int) -> list[float]:
    optimizer = build_adamw([{"params": [nn.Parameter(torch.zeros(1))]}], lr=1.0)
    scheduler = build_schedule(optimizer, schedule, warmup, total)
    lrs = []
    for _ in range(total):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


def test_schedules_warm_up_linearly_then_hold_or_decay_to_zero():
    assert _lrs("constant", 2, 5) == [0.0, 0.5, 1.0, 1.0, 1.0]
    cosine = _lrs("cosine", 2, 6)
    assert cosine[:3] == [0.0, 0.5, 1.0] and cosine[3] == pytest.approx(
        0.5 * (1 + torch.cos(torch.tensor(torch.pi / 4)).item())
    )
    assert all(a > b for a, b in zip(cosine[2:], cosine[3:]))
    with pytest.raises(ConfigError, match="schedule='linear'"):
        _lrs("linear", 0, 3)


def test_decay_groups_give_matrices_decay_and_prefixes_their_multiplier():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    model[1].requires_grad_(False)
    groups = decay_groups(model.named_parameters(), 1e-3, 0.1, {"2.": 0.5})
    as_sets = {(g["lr"], g["weight_decay"]): {id(p) for p in g["params"]} for g in groups}
    assert as_sets == {
        (1e-3, 0.1): {id(model[0].weight)},
        (1e-3, 0.0): {id(model[0].bias)},
        (5e-4, 0.1): {id(model[2].weight)},
        (5e-4, 0.0): {id(model[2].bias)},
    }


def test_apply_gradients_clips_steps_and_drops_the_gradients():
    parameter = nn.Parameter(torch.zeros(2))
    optimizer = build_adamw([{"params": [parameter]}], lr=0.1)
    (parameter * torch.tensor([30.0, 40.0])).sum().backward()
    assert apply_gradients([parameter], optimizer, None, grad_clip=1.0) == pytest.approx(50.0)
    assert parameter.grad is None and torch.all(parameter != 0)


def test_the_loss_lives_in_one_place(model_config):
    torch.manual_seed(0)
    model = VLJepa(model_config).eval()
    tokens, targets = torch.randn(3, 8, model.x_encoder.embed_dim), ["a", "b", "a"]
    with torch.no_grad():
        out = model(tokens, [None] * 3, targets)
        again = model.loss(out.predicted, out.target, targets)
    assert torch.equal(out.loss, again.loss)


def test_trimming_the_log_drops_later_lines_and_a_line_cut_by_a_kill(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"global_step": 1}\n{"global_step": 2}\n{"global_step": 3}\n{"global_st')
    trim_metrics(path, 2)
    assert path.read_text() == '{"global_step": 1}\n{"global_step": 2}\n'
    with MetricsLog(path, resume_step=None) as log:
        log.write({"global_step": 1, "loss": 0.5})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"global_step": 1, "loss": 0.5}]


def test_a_second_run_on_one_folder_fails_at_once_naming_it(tmp_path):
    with RunDirectory(tmp_path / "run"):
        with pytest.raises(RunDirectoryInUse, match=f"{tmp_path / 'run'}: another run is training") as error:
            RunDirectory(tmp_path / "run").__enter__()
        assert isinstance(error.value, VljepaError)
    with RunDirectory(tmp_path / "run"):  # released at the end of the first
        assert (tmp_path / "run" / LOCK_FILE).is_file()


def test_taking_the_folder_removes_interrupted_writes(tmp_path):
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / "model.safetensors").write_bytes(b"half")
    (tmp_path / "final.tmp").mkdir()
    (tmp_path / "checkpoint").mkdir()
    with RunDirectory(tmp_path):
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE, "checkpoint"]


def _config(manifest, out, cache, steps: int = 3, batch_size: int = 8) -> TrainConfig:
    return TrainConfig(
        train_manifest=str(manifest),
        out_dir=str(out),
        cache_dir=str(cache),
        bf16=False,
        log_every=1,
        eval_every=100,
        save_every=2,
        model=tiny_model_config(),
        stages=[StageConfig(name="pretrain", steps=steps, batch_size=batch_size, lr=1e-3)],
    )


def test_a_trainer_refuses_a_folder_another_run_holds_before_any_setup(tmp_path, clip_manifest):
    with RunDirectory(tmp_path / "run"):
        with pytest.raises(RunDirectoryInUse, match=str(tmp_path / "run")):
            Trainer(_config(clip_manifest, tmp_path / "run", tmp_path / "cache"), progress=False)
    assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]  # nothing written, not even its config
    assert not (tmp_path / "cache").exists()  # refused before the clips were encoded


def test_no_collapse_warning_in_a_short_stage(tmp_path, clip_manifest, capsys):
    config = _config(clip_manifest, tmp_path / "run", tmp_path / "cache")
    config.collapse_threshold = 2.0  # every spread is below it: only the grace period keeps the warning quiet
    assert collapse_check_from(config.stages[0]) > config.stages[0].steps
    Trainer(config, progress=False).run()
    assert "collapsing" not in capsys.readouterr().err
    assert collapse_check_from(StageConfig(steps=1000, warmup_steps=50)) == 101


def test_a_batch_larger_than_the_training_samples_warns(tmp_path, clip_manifest, capsys):
    Trainer(_config(clip_manifest, tmp_path / "run", tmp_path / "cache", batch_size=32), progress=False)
    err = " ".join(capsys.readouterr().err.split())
    assert "stage 'pretrain': batch_size 32 is larger than its 16 training samples" in err and str(clip_manifest) in err
    Trainer(_config(clip_manifest, tmp_path / "run2", tmp_path / "cache", batch_size=16), progress=False)
    assert "is larger than" not in capsys.readouterr().err


def test_a_leftover_checkpoint_tmp_is_removed_on_resume(tmp_path, clip_manifest):
    cache = tmp_path / "cache"
    straight = Trainer(_config(clip_manifest, tmp_path / "a", cache, steps=4), progress=False).run()
    Trainer(_config(clip_manifest, tmp_path / "b", cache, steps=4), progress=False).run(stop_at_global_step=2)
    (tmp_path / "b" / "checkpoint.tmp").mkdir()
    (tmp_path / "b" / "checkpoint.tmp" / "trainer_state.pt").write_bytes(b"cut short")
    resumed = Trainer(_config(clip_manifest, tmp_path / "b", cache, steps=4), progress=False).run()
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "b").glob("*.tmp"))
