"""The command line end to end on a user-style manifest: train, eval, classify, ask, retrieve."""

from __future__ import annotations

import json

import yaml
from conftest import tiny_model_config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import to_dict

runner = CliRunner()


def test_train_eval_and_inference_commands(tmp_path, clip_manifest):
    config = {
        "train_manifest": str(clip_manifest),
        "out_dir": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "cache"),
        "model": to_dict(tiny_model_config()),
        "log_every": 5,
        "eval_every": 5,
        "stages": [
            {"name": "pretrain", "steps": 10, "batch_size": 16},
            {"name": "sft", "steps": 10, "batch_size": 16, "schedule": "cosine", "mixture": {"vqa": 0.5, "label": 0.5}},
        ],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "config.yaml"), "model.y_encoder.lr_multiplier=0"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "run" / "final"
    assert json.loads((model / "config.json").read_text())["y_encoder"]["lr_multiplier"] == 0

    result = runner.invoke(
        app,
        [
            "eval",
            "-m",
            str(model),
            "--manifest",
            str(clip_manifest),
            "--prior",
            str(clip_manifest),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "eval.json").read_text())[str(clip_manifest)]
    assert results["classification"]["num_classes"] == 2 and results["retrieval"]["pool_clips"] == 16
    assert set(results["vqa"]) == {"direction"} and results["vqa"]["direction"]["chance"] == 0.5

    video = str(clip_manifest.parent / "clips" / "00.mp4")
    result = runner.invoke(app, ["classify", video, "-m", str(model), "--labels", "moving left,moving right"])
    assert result.exit_code == 0 and "moving left" in result.output and "moving right" in result.output
    window = ["--start", "0.5", "--end", "1.0"]
    result = runner.invoke(app, ["classify", video, "-m", str(model), "--labels", "moving left,moving right", *window])
    assert result.exit_code == 0 and "moving left" in result.output and "moving right" in result.output
    result = runner.invoke(
        app, ["ask", video, "which way does the square move?", "-m", str(model), "-o", "left", "-o", "right"]
    )
    assert result.exit_code == 0 and result.output.count("->") == 1
    result = runner.invoke(
        app,
        [
            "retrieve",
            "-m",
            str(model),
            "--query",
            "a red square moves right",
            "--videos",
            str(clip_manifest.parent / "clips"),
            "--top",
            "3",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0 and result.output.count(".mp4") == 3


def test_missing_video_is_a_clear_error(tmp_path, clip_manifest):
    model_dir = tmp_path / "model"
    from vljepa.model import VLJepa

    VLJepa(tiny_model_config()).save_pretrained(model_dir)
    result = runner.invoke(app, ["ask", str(tmp_path / "nope.mp4"), "q?", "-m", str(model_dir), "-o", "a", "-o", "b"])
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'nope.mp4'}: no such file\n")


def test_demo_passes_world_options_and_training_overrides(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "vljepa.demo.run.run_demo", lambda *args, **kwargs: calls.append((args, kwargs)) or tmp_path / "report.md"
    )
    result = runner.invoke(
        app,
        [
            "demo",
            "--out",
            str(tmp_path),
            "--world-option",
            "num_train=12",
            "--world-option",
            "size=32",
            "stages.0.steps=3",
        ],
    )
    assert result.exit_code == 0, result.output
    (out, overrides, world), kwargs = calls[0]
    assert overrides == ["stages.0.steps=3"] and (world.num_train, world.size, world.num_test) == (12, 32, 200)
    assert kwargs["encoder_pretrain_overrides"] is None and kwargs["minutes"] == 10.0
    assert runner.invoke(app, ["demo", "--out", str(tmp_path), "--minutes", "0"]).exit_code == 0
    assert calls[-1][1]["minutes"] is None  # 0: the whole recipe, however long


def test_demo_says_how_long_it_needs_when_the_budget_is_too_small(tmp_path, monkeypatch):
    from vljepa.demo.budget import BudgetTooSmall

    def too_slow(*args, **kwargs):
        raise BudgetTooSmall("this machine fits only 5% ... Run `vljepa demo --minutes 31`")

    monkeypatch.setattr("vljepa.demo.run.run_demo", too_slow)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--minutes", "2"])
    assert result.exit_code == 2 and result.stderr.startswith("error: this machine fits only 5%")
    assert "vljepa demo --minutes 31" in result.stderr
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--world-option", "num_trian=12"])
    assert result.exit_code == 2 and result.stderr.startswith("error: num_trian: unknown config key; known keys: seed,")
