"""The run folder's contract: a resume continues the recorded run; another config is refused before any work
(listing what differs), safe changes only when allowed and then recorded; a run refused by the lock writes
nothing; the precision chosen at the start is kept."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from test_train import _config

from vljepa.config import StageConfig
from vljepa.errors import ConfigError
from vljepa.substrate.run_dir import RunDirectory, RunDirectoryInUse
from vljepa.train.trainer import Trainer


def recorded(out) -> dict:
    return json.loads((out / "train_config.json").read_text())


@pytest.fixture
def stopped(tmp_path, clip_manifest):
    """(config, out_dir) of a run stopped at global step 3 (stage 0 of 5 steps, then stage 1 of 5)."""
    config = _config(clip_manifest, tmp_path / "run", tmp_path / "cache")
    Trainer(config, progress=False).run(stop_at_global_step=3)
    return config, tmp_path / "run"


def test_another_config_is_refused_before_any_work_with_the_keys_that_differ(stopped):
    config, out = stopped
    before = (out / "train_config.json").read_text()
    other = dataclasses.replace(config, seed=7, model=dataclasses.replace(config.model, shared_dim=64))
    with pytest.raises(ConfigError, match=r"model.shared_dim: 32 -> 64; seed: 0 -> 7.*cannot change"):
        Trainer(other, progress=False)
    finished_stage = dataclasses.replace(config.stages[0], lr=5e-2)
    with pytest.raises(ConfigError, match=r"stages.0.lr: 0.001 -> 0.05.*stage 0 has started"):
        Trainer(dataclasses.replace(config, stages=[finished_stage, config.stages[1]]), progress=False)
    assert (out / "train_config.json").read_text() == before


def test_safe_changes_need_allowing_and_are_recorded(stopped):
    config, out = stopped
    longer = dataclasses.replace(config.stages[1], steps=8)
    extra = StageConfig(name="more", steps=2, batch_size=8, lr=1e-4, mixture={"caption": 1.0})
    changed = dataclasses.replace(config, eval_every=2, stages=[config.stages[0], longer, extra])
    with pytest.raises(ConfigError, match="these changes are safe: set allow_config_changes=true"):
        Trainer(changed, progress=False)
    final = Trainer(dataclasses.replace(changed, allow_config_changes=True), progress=False).run()
    assert final.name == "final" and (out / "more").is_dir()  # the added stage trained
    (entry,) = recorded(out)["history"]
    assert entry["from"] == {"stage": 0, "step": 3}
    changed = entry["changed"]
    assert changed["eval_every"] == [4, 2] and changed["stages.1.steps"] == [5, 8]
    assert changed["stages.2.name"] == [None, "more"] and changed["stages.2.steps"] == [None, 2]


def test_a_finished_run_trains_the_steps_its_last_stage_is_given_and_no_earlier_stage_grows(stopped, tmp_path):
    config, out = stopped
    Trainer(config, progress=False).run()  # finishes
    before = load_file(out / "final" / "model.safetensors")
    earlier = dataclasses.replace(config, stages=[dataclasses.replace(config.stages[0], steps=9), config.stages[1]])
    with pytest.raises(ConfigError, match="stages.0.steps: 5 -> 9.*stage 0 has finished"):
        Trainer(dataclasses.replace(earlier, allow_config_changes=True), progress=False)
    grown = dataclasses.replace(config, stages=[config.stages[0], dataclasses.replace(config.stages[1], steps=8)])
    Trainer(dataclasses.replace(grown, allow_config_changes=True), progress=False).run()
    after = load_file(out / "final" / "model.safetensors")
    assert any(not torch.equal(before[key], after[key]) for key in before)  # the 3 extra steps trained
    steps = [json.loads(line)["global_step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 13 and steps == sorted(steps)
    assert recorded(out)["history"][-1] == {"from": {"stage": 1, "step": 5}, "changed": {"stages.1.steps": [5, 8]}}


def test_a_run_refused_by_the_lock_writes_nothing(stopped):
    config, out = stopped
    before = (out / "train_config.json").read_text()
    with RunDirectory(out), pytest.raises(RunDirectoryInUse):
        Trainer(dataclasses.replace(config, seed=7), progress=False)
    assert (out / "train_config.json").read_text() == before


def test_the_precision_of_the_runs_start_is_kept(stopped):
    config, out = stopped
    saved = recorded(out)
    saved["bf16"] = "auto"
    saved["resolved"]["reason"] = "chosen at the start"
    (out / "train_config.json").write_text(json.dumps(saved))
    trainer = Trainer(dataclasses.replace(config, bf16="auto"), progress=False)
    assert trainer.precision.name == saved["resolved"]["precision"]
    assert trainer.precision.reason == "chosen at the start"  # the start's choice, not a new probe
    trainer.release()
