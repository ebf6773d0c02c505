"""Model cards: every model folder a run saves has one, its front matter is the YAML the Hub reads, and its
figures are those of the results files it was given."""

from __future__ import annotations

import dataclasses
import json

import yaml
from test_train import _config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.eval.model_card import CARD_FILE, write_card
from vljepa.eval.report import headline_rows
from vljepa.train.trainer import Trainer

runner = CliRunner()


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_every_saved_model_folder_has_a_card_the_hub_can_read(tmp_path, clip_manifest):
    out = tmp_path / "run"
    config = dataclasses.replace(
        _config(clip_manifest, out, tmp_path / "cache"), best_metric="val_caption_top1", eval_every=2
    )
    Trainer(config, progress=False, write_card=write_card).run()
    for folder in ("pretrain", "sft", "final", "best"):
        card = (out / folder / CARD_FILE).read_text()
        front = front_matter(card)
        assert front["library_name"] == "vljepa" and front["license"] == "mit"
        assert front["datasets"] == [f"{clip_manifest.parent.name}/{clip_manifest.name}"]
        assert "| Predictor | Llama layers | stored (`model.safetensors`) | MIT (vljepa) |" in card
        assert "| Y-encoder text model | sentence-transformers/all-MiniLM-L6-v2" in card  # trained at 0.05x: stored
        assert "| pretrain |" in card and "5 x 8 = 40 |" in card  # steps x batch
    assert "No held-out results yet" in (out / "final" / CARD_FILE).read_text()


def test_the_cards_figures_are_the_results_files(tmp_path, clip_manifest, model_with_decoder):
    model_dir, cache = model_with_decoder
    evaluation = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        [
            "eval",
            "-m",
            str(model_dir),
            "--manifest",
            str(clip_manifest),
            "--cache-dir",
            str(cache),
            "--out",
            str(evaluation),
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["card", str(model_dir), "--results", str(evaluation)])
    assert result.exit_code == 0, result.output
    card = (model_dir / CARD_FILE).read_text()
    suite = json.loads(evaluation.read_text())[str(clip_manifest)]
    expected = headline_rows({"test": suite})
    rows = [line.split(" | ") for line in card.splitlines() if line.startswith("| eval.json")]
    assert [(r[1], float(r[2]), float(r[3].rstrip(" |"))) for r in rows] == [
        (task, round(100 * value, 1), round(100 * chance, 1)) for task, value, chance, _ in expected
    ]
    assert set(front_matter(card)["metrics"]) == {task for task, *_ in expected}
    assert "or a Y-decoder writes it as text" in card
    not_results = tmp_path / "other.json"
    not_results.write_text('{"loss": 1}')
    result = runner.invoke(app, ["card", str(model_dir), "--results", str(not_results)])
    assert result.exit_code == 2 and "other.json: no evaluation in it" in result.output
