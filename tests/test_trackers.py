"""`report_to`: TensorBoard and W&B see what metrics.jsonl holds, resume continues the same run, and a tracker
that is not installed is refused before any work."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_train import _config

from vljepa.config import load_train_config
from vljepa.errors import MissingExtraError
from vljepa.eval.report import plot_validation
from vljepa.eval.suite import validation_figures
from vljepa.substrate.trackers import WANDB_ID_FILE, Trackers, scalars
from vljepa.train.trainer import Trainer

BEST = "eval.retrieval.exact.t2v_R@1"


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_holds_the_scalars_of_metrics_jsonl_across_a_resume(tmp_path, clip_manifest):
    out = tmp_path / "run"
    config = dataclasses.replace(
        _config(clip_manifest, out, tmp_path / "cache"), report_to=["tensorboard"], best_metric=BEST
    )
    evaluation = {"score": validation_figures, "draw_figures": plot_validation}
    Trainer(config, progress=False, **evaluation).run(stop_at_global_step=3)  # a checkpoint at step 3
    interrupted = Trackers(["tensorboard"], out, 3, {})  # what a process killed before its next checkpoint logged
    interrupted.log({"loss": 99.0, "val_caption_loss": 99.0}, step=4)
    interrupted.close()
    Trainer(config, progress=False, **evaluation).run()  # resumes at step 3: step 4 is logged again, the stray purged
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    logged = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    expected: dict[str, dict[int, float]] = {}
    for entry in metrics(out):
        for key, value in scalars(entry).items():
            expected.setdefault(key, {})[entry["global_step"]] = value
    assert {"loss", "lr", "grad_norm", "prediction_spread", "val_caption_loss", "val_vqa_top1"} <= set(expected)
    assert logged.keys() == expected.keys()
    for key, values in expected.items():
        assert logged[key] == pytest.approx(values, rel=1e-6), key
    assert "config/text_summary" in events.Tags()["tensors"]  # the run's config, once, as text
    assert BEST in expected  # the evaluation figure, scored at each eval_every
    assert [e.step for e in events.Images("learning_curves")] == [5, 10]  # at the end of each stage
    assert [e.step for e in events.Images("tasks")] == [5, 10]  # the latest evaluation's task plot, too


def test_wandb_offline_writes_a_run_that_resume_continues(tmp_path, clip_manifest, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    config = dataclasses.replace(_config(clip_manifest, out, tmp_path / "cache"), report_to=["wandb"])
    Trainer(config, progress=False).run(stop_at_global_step=3)
    run_id = (out / WANDB_ID_FILE).read_text()
    Trainer(config, progress=False).run()
    assert (out / WANDB_ID_FILE).read_text() == run_id
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(run_id) for r in runs)  # one W&B run, in two sittings
    assert all((r / f"run-{run_id}.wandb").is_file() for r in runs)


def test_a_tracker_that_is_not_installed_is_refused_at_once(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r'report_to: wandb needs the wandb package .* "vljepa\[wandb\]"'):
        load_train_config(None, ["report_to=[wandb]"])
    with pytest.raises(Exception, match="report_to.0: must be one of tensorboard, wandb"):
        load_train_config(None, ["report_to=[mlflow]"])


def test_the_y_decoders_training_reports_its_log(tmp_path, clip_manifest):
    import torch
    from conftest import TINY_DECODER, tiny_model_config
    from typer.testing import CliRunner

    from vljepa.cli import app
    from vljepa.model import VLJepa

    torch.manual_seed(0)
    VLJepa(tiny_model_config()).save_pretrained(tmp_path / "model")
    steps = ["inversion_steps=12", "adaptation_steps=4"]
    result = CliRunner().invoke(
        app,
        [
            "train-decoder",
            "-m",
            str(tmp_path / "model"),
            "--manifest",
            str(clip_manifest),
            f"cache_dir={tmp_path / 'cache'}",
        ]
        + [o for o in TINY_DECODER if not o.startswith(("inversion", "adaptation"))]
        + steps
        + ["report_to=[tensorboard]"],
    )
    assert result.exit_code == 0, result.output
    log = json.loads((tmp_path / "model" / "y_decoder" / "train_log.json").read_text())["log"]
    events = EventAccumulator(str(tmp_path / "model" / "y_decoder_logs" / "tensorboard"))
    events.Reload()
    assert {e.step: e.value for e in events.Scalars("loss")} == pytest.approx({e["step"]: e["loss"] for e in log})
