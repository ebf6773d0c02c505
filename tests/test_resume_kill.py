"""Exact resume after a real `kill -9`: mid-run, and in the middle of writing a checkpoint.

Each case starts `vljepa train` as a subprocess on the tiny test model (whose MiniLM text model trains at
x0.05, so a checkpoint holds ~90 MB and its write takes long enough to be caught), kills it with SIGKILL,
resumes the run in this process and compares every tensor of `final/model.safetensors` with an
uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_model_config
from safetensors.torch import load_file

from vljepa.config import TrainConfig, load_train_config, to_dict
from vljepa.train.trainer import Trainer

VLJEPA = Path(sys.executable).with_name("vljepa")
TIMEOUT_S = 120


def _write_config(path: Path, manifest: Path, cache: Path) -> Path:
    config = {
        "train_manifest": str(manifest),
        "val_manifest": str(manifest),
        "cache_dir": str(cache),
        "bf16": False,
        "log_every": 2,
        "eval_every": 4,
        "save_every": 2,
        "model": to_dict(tiny_model_config()),
        "stages": [
            {"name": "pretrain", "steps": 4, "batch_size": 8},
            {
                "name": "sft",
                "steps": 6,
                "batch_size": 8,
                "schedule": "cosine",
                "warmup_steps": 2,
                "mixture": {"vqa": 0.5, "label": 0.25, "caption": 0.25},
            },
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _config(config_file: Path, out: Path) -> TrainConfig:
    return load_train_config(config_file, [f"out_dir={out}"])


def _kill_when(config_file: Path, out: Path, ready) -> None:
    """Start `vljepa train` into `out`, SIGKILL it as soon as `ready()` holds, and reap it."""
    process = subprocess.Popen(
        [str(VLJEPA), "train", "-c", str(config_file), f"out_dir={out}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not ready():
        assert process.poll() is None, (
            f"vljepa train ended (code {process.returncode}) before it was killed: "
            f"{process.stderr.read().decode()[-2000:]}"
        )
        assert time.monotonic() < deadline, "vljepa train never reached the point to kill it at"
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    process.stderr.close()


def _assert_same_final(straight: Path, resumed: Path) -> None:
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("y_encoder.text_model.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _log_without_timing(out: Path) -> list[str]:
    return [line.split('"samples_per_s"')[0] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(clip_manifest, tmp_path_factory) -> tuple[Path, Path]:
    """(the config file, its uninterrupted run's folder): the reference both kills are compared with."""
    root = tmp_path_factory.mktemp("straight")
    config_file = _write_config(root / "config.yaml", clip_manifest, root / "cache")
    Trainer(_config(config_file, root / "run"), progress=False).run()
    return config_file, root / "run"


def test_a_run_killed_mid_run_resumes_exactly(tmp_path, straight):
    config_file, straight_run = straight
    killed = tmp_path / "killed"
    _kill_when(config_file, killed, lambda: (killed / "checkpoint" / "trainer_state.pt").is_file())
    assert not (killed / "final").exists()  # killed mid-run, after its first checkpoint
    resumed = Trainer(_config(config_file, killed), progress=False).run()
    _assert_same_final(straight_run / "final", resumed)
    assert _log_without_timing(killed) == _log_without_timing(straight_run)


def test_a_run_killed_while_writing_a_checkpoint_resumes_exactly_and_leaves_no_tmp(tmp_path, straight):
    config_file, straight_run = straight
    killed = tmp_path / "killed"

    # the second checkpoint's write: a whole checkpoint/ exists and its temp folder (checkpoint.<pid>-<id>.tmp)
    # is being filled
    def writing() -> bool:
        return (killed / "checkpoint").is_dir() and any(killed.glob("checkpoint.*.tmp"))

    _kill_when(config_file, killed, writing)
    assert any(killed.glob("checkpoint.*.tmp")) and not (killed / "final").exists()
    resumed = Trainer(_config(config_file, killed), progress=False).run()
    _assert_same_final(straight_run / "final", resumed)
    assert sorted(p.name for p in killed.glob("*.tmp")) == [] and sorted(p.name for p in killed.glob("*.old")) == []
