"""`best/`: the model a held-out metric prefers, kept beside `final/` and surviving a resume."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import tiny_model_config

from vljepa.config import StageConfig, TrainConfig
from vljepa.errors import ConfigError
from vljepa.eval.suite import validation_figures
from vljepa.model import VLJepa
from vljepa.substrate.metrics import METRICS_FILE
from vljepa.train.best import BEST_DIR, BEST_FILE, BestCheckpoint, metric_value
from vljepa.train.trainer import Trainer


def test_metric_value_follows_a_dotted_path_and_names_what_exists():
    results = {"retrieval": {"exact": {"t2v_R@1": 0.25}}, "vqa": {"accuracy": float("nan")}}
    assert metric_value(results, "retrieval.exact.t2v_R@1") == 0.25
    with pytest.raises(ConfigError, match=r"no figure 'retrieval.exact.R@1' here; at 'R@1' there are \['t2v_R@1'\]"):
        metric_value(results, "retrieval.exact.R@1")
    with pytest.raises(ConfigError, match="'vqa.accuracy' is nan, not a number"):
        metric_value(results, "vqa.accuracy")


@pytest.mark.parametrize(
    "mode, values, kept", [("max", [0.2, 0.5, 0.4, 0.6], [0.2, 0.5, 0.6]), ("min", [3.0, 2.0, 2.5], [3.0, 2.0])]
)
def test_only_an_improvement_replaces_the_best_and_a_resume_remembers_it(tmp_path, mode, values, kept):
    best = BestCheckpoint.resume(tmp_path, "val_caption_top1", mode)
    written = []
    for step, value in enumerate(values):
        if best.offer(value, {"step": step}, lambda folder, value=value: (folder / "w").write_text(str(value))):
            written.append(value)
    assert written == kept
    assert json.loads((tmp_path / BEST_DIR / BEST_FILE).read_text())["value"] == kept[-1]
    assert (tmp_path / BEST_DIR / "w").read_text() == str(kept[-1])
    assert BestCheckpoint.resume(tmp_path, "val_caption_top1", mode).value == kept[-1]
    assert BestCheckpoint.resume(tmp_path, "val_vqa_top1", mode).value is None  # another metric is no rival


def test_a_best_metric_needs_a_val_manifest_and_a_known_name():
    with pytest.raises(ConfigError, match="best_metric: 'val_caption_top1' is scored on the val manifest"):
        TrainConfig(best_metric="val_caption_top1")
    with pytest.raises(ConfigError, match=r"best_metric: expected one of \['val_caption_top1'"):
        TrainConfig(best_metric="caption_top1", val_manifest="val.jsonl")
    with pytest.raises(ConfigError, match="best_mode"):
        TrainConfig(best_mode="highest")


def test_training_keeps_the_model_with_the_best_val_retrieval(tmp_path, clip_manifest):
    metric = "eval.retrieval.exact.t2v_R@1"
    config = TrainConfig(
        train_manifest=str(clip_manifest),
        val_manifest=str(clip_manifest),
        out_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        model=tiny_model_config(),
        log_every=2,
        eval_every=2,
        best_metric=metric,
        stages=[StageConfig(name="pretrain", steps=8, batch_size=8, lr=3e-3)],
    )
    with pytest.raises(ConfigError, match="evaluation figure.*no evaluation"):
        Trainer(config, progress=False)
    bogus = dataclasses.replace(config, best_metric="eval.retrieval.exact.R@1")
    with pytest.raises(ConfigError, match=r"no figure 'retrieval.exact.R@1' here"):  # before the first step
        Trainer(bogus, progress=False, score=validation_figures).run()
    log_file = tmp_path / "run" / METRICS_FILE
    assert not (log_file.exists() and log_file.read_text()) and not (tmp_path / "run" / "checkpoint").exists()
    Trainer(config, progress=False, score=validation_figures).run()
    log = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    scores = [(entry[metric], entry["global_step"]) for entry in log if metric in entry]
    assert len(scores) == 4
    best_value = max(value for value, _ in scores)
    first_best_step = next(step for value, step in scores if value == best_value)
    record = json.loads((tmp_path / "run" / BEST_DIR / BEST_FILE).read_text())
    assert record["value"] == best_value and record["global_step"] == first_best_step
    VLJepa.from_pretrained(tmp_path / "run" / BEST_DIR)  # a loadable model, like final/
