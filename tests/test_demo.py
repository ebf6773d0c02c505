"""The demo end to end on a tiny world and a few steps: every stage runs and the report is written."""

from __future__ import annotations

import json

import pytest

from vljepa.data.world import WorldConfig
from vljepa.demo import run_demo
from vljepa.demo.budget import BudgetTooSmall

TINY_WORLD = WorldConfig(num_train=24, num_val=6, num_test=12, num_streams=1, stream_seconds=12, size=32, num_frames=8)
FEW_STEPS = [
    "stages.0.steps=2",
    "stages.1.steps=2",
    "stages.0.batch_size=8",
    "stages.1.batch_size=8",
    "stages.0.warmup_steps=1",
    "stages.1.warmup_steps=1",
    "eval_every=2",
    "log_every=1",
]
EAGER = [*FEW_STEPS, "compile=false"]  # a compiled run is test_compilation's: compiling costs half a minute
FEW_DECODER_STEPS = ["inversion_steps=2", "adaptation_steps=2", "warmup_steps=1", "batch_size=8"]


def test_demo_with_a_pretrained_encoder_writes_its_report(tmp_path):
    report = run_demo(
        tmp_path,
        EAGER,
        TINY_WORLD,
        encoder_pretrain_overrides=["steps=2", "batch_size=4", "warmup_steps=1"],
        decoder_overrides=FEW_DECODER_STEPS,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    for picture in ("tasks.png", "learning_curves.png", "stream_timeline.png"):
        assert (tmp_path / picture).is_file(), picture
    assert set(results) >= {"test", "test_heldout", "world_prediction", "test_single_frame", "stream"}
    assert set(results["test"]["generation"]) == {"beam_size", "inversion", "captioning", "open_vqa"}
    assert "generation" not in results["test_single_frame"] and results["stream"]["decodes"] >= 1
    assert (tmp_path / "model" / "final" / "y_decoder" / "model.safetensors").is_file()
    assert "Selective decoding on a long stream" in report.read_text()
    assert results["test"]["classification"]["num_classes"] == 12 and "pretrain encoder" in results["timings_s"]
    saved = json.loads((tmp_path / "model" / "final" / "config.json").read_text())
    assert saved["x_encoder"]["path"] == str(tmp_path / "encoder-pretrain" / "encoder")


def test_a_budgeted_demo_sizes_its_recipe_to_the_time_and_reports_it(tmp_path):
    report = run_demo(
        tmp_path,
        EAGER,
        TINY_WORLD,
        decoder_overrides=FEW_DECODER_STEPS,
        minutes=5,
        command="vljepa demo --minutes 5",
    )
    results = json.loads((tmp_path / "results.json").read_text())
    budget = results["budget"]
    assert budget["minutes"] == 5 and budget["wall minutes"] < 5
    assert budget["fraction of the recipe (at start, then re-sized per part)"][0] == 1.0  # a tiny recipe fits
    assert set(budget["measured seconds per step (last measurement)"]) == {"pretrain", "sft", "Y-decoder"}
    assert results["training"]["precision"]["precision"] in ("bf16", "fp32")
    assert results["training"]["pretrain samples seen"] == 16
    text = report.read_text()
    assert "Budget: 5 min" in text and "Precision:" in text and "Predictor: " in text and "| floor |" in text
    assert results["training"]["compile"]["compiled"] is False  # the setting that ran is recorded


def test_a_budget_too_small_for_the_machine_stops_before_training_and_says_what_it_needs(tmp_path, monkeypatch):
    monkeypatch.setattr("vljepa.train.trainer.Trainer.measure_step_seconds", lambda self, index, steps=3: 300.0)
    with pytest.raises(BudgetTooSmall, match=r"vljepa demo --minutes \d+") as error:
        run_demo(tmp_path, EAGER, TINY_WORLD, decoder_overrides=FEW_DECODER_STEPS, minutes=1)
    assert "pretrain 300.00 s/step" in str(error.value)
    assert not (tmp_path / "model" / "final").exists()


def test_the_demo_records_the_steps_it_trained_when_it_sizes_the_recipe_down(tmp_path, monkeypatch):
    from vljepa.config import RUN_CONFIG_FILE
    from vljepa.demo.budget import TimeBudget
    from vljepa.substrate.metrics import METRICS_FILE
    from vljepa.train.decoder import LOG_FILE

    monkeypatch.setattr(TimeBudget, "fraction", lambda self, parts: 0.5)  # half the recipe fits, at every sizing
    steps = [*EAGER, "stages.0.steps=4", "stages.1.steps=4"]  # later keys win: 4 steps each, sized to 2
    run_demo(tmp_path, steps, TINY_WORLD, decoder_overrides=FEW_DECODER_STEPS, minutes=5)
    log = [json.loads(line) for line in (tmp_path / "model" / METRICS_FILE).read_text().splitlines()]
    trained = {stage: max(e["step"] for e in log if e["stage"] == stage) for stage in ("pretrain", "sft")}
    assert trained == {"pretrain": 2, "sft": 2}
    saved = json.loads((tmp_path / "model" / RUN_CONFIG_FILE).read_text())
    assert [stage["steps"] for stage in saved["stages"]] == [2, 2]  # what ran, not the recipe
    decoder = json.loads((tmp_path / "model" / "final" / "y_decoder" / LOG_FILE).read_text())["config"]
    assert decoder["inversion_steps"] + decoder["adaptation_steps"] == 2  # 4 decoder steps, sized to half
