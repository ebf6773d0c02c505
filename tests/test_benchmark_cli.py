"""`vljepa benchmark` end to end with a tiny model trained on a tiny world: run, strict, table, errors."""

from __future__ import annotations

import json
import shutil

import benchmark_fixtures as fixtures
import pytest
import yaml
from conftest import tiny_model_config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import to_dict
from vljepa.data.world import WorldConfig, generate_world

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder, world, model): a tiny model trained a few steps on a tiny world's train split."""
    root = tmp_path_factory.mktemp("bench")
    world = generate_world(
        root / "world", WorldConfig(num_train=16, num_val=4, num_test=6, num_streams=0, size=32), progress=False
    )
    config = {
        "train_manifest": str(world / "train.jsonl"),
        "out_dir": str(root / "run"),
        "cache_dir": str(root / "cache"),
        "model": to_dict(tiny_model_config()),
        "stages": [
            {"name": "pretrain", "steps": 3, "batch_size": 8},
            {"name": "sft", "steps": 3, "batch_size": 8, "schedule": "cosine", "mixture": {"vqa": 0.5, "label": 0.5}},
        ],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", "--config", str(root / "config.yaml")])
    assert result.exit_code == 0, result.output
    return root, world, root / "run" / "final"


def run(trained, name, data, *extra):
    root, _, model = trained
    out = data.parent / f"{name}-result.json"
    arguments = ["benchmark", "run", name, "-m", str(model), "--root", str(data), "--out", str(out)]
    result = runner.invoke(app, [*arguments, "--cache-dir", str(root / "cache"), *extra])
    return result, out


def test_world_benchmark_equals_vljepa_eval(trained):
    root, world, model = trained
    result, out = run(trained, "world", world)
    assert result.exit_code == 0, result.output
    benchmark = json.loads(out.read_text())
    evaluation = root / "eval.json"
    arguments = [
        "eval",
        "-m",
        str(model),
        "--manifest",
        str(world / "test.jsonl"),
        "--prior",
        str(world / "train.jsonl"),
    ]
    result = runner.invoke(app, [*arguments, "--cache-dir", str(root / "cache"), "--out", str(evaluation)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(evaluation.read_text())[str(world / "test.jsonl")]
    for task in ("classification", "retrieval", "vqa"):
        assert benchmark["metrics"][task] == evaluated[task]
    assert (benchmark["dataset"], benchmark["split"], benchmark["answer_vocabulary"]) == (
        "world",
        "test",
        "the options each question lists",
    )
    assert benchmark["pool_size"]["retrieval_videos"] == 6
    contamination = benchmark["contamination"]
    assert contamination["complete"] and contamination["training_manifests"] == [str(world / "train.jsonl")]
    assert contamination["identical_files"] == 0


def test_msrvtt_kinetics_and_pope_through_the_command_line_then_the_table(trained, tmp_path):
    datasets = {"msrvtt": fixtures.msrvtt, "kinetics400": fixtures.kinetics, "pope": fixtures.pope}
    results = {}
    for name, writer in datasets.items():
        writer(tmp_path / name)
        result, out = run(trained, name, tmp_path / name, "--allow-missing")
        assert result.exit_code == 0, result.output
        results[name] = json.loads(out.read_text())
        assert results[name]["contamination"]["complete"] and not results[name]["contamination"]["overlap"]
        assert results[name]["model"] == str(trained[2].resolve())
        assert results[name]["manifest"] == str(tmp_path / f"{name}-result-import" / "manifest.jsonl")

    msrvtt = results["msrvtt"]
    assert msrvtt["pool_size"] == {"retrieval_videos": 4, "retrieval_captions": 4}
    assert set(msrvtt["metrics"]["retrieval"]["exact"]) == {
        f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")
    }
    assert msrvtt["metrics"]["retrieval"]["exact"]["t2v_R@5"] == 1.0  # a pool of 4

    kinetics = results["kinetics400"]
    assert kinetics["pool_size"] == {"classes": 4, "classified_clips": 4} and kinetics["missing_media"] == 1

    pope = results["pope"]
    assert pope["answer_vocabulary"] == "yes/no" and pope["pool_size"] == {"questions": 6}
    assert set(pope["metrics"]["vqa"]) == {"random", "popular", "adversarial"}
    for variant in pope["metrics"]["vqa"].values():
        assert variant["num"] == 2 and {"precision", "recall", "f1", "yes_ratio"} <= set(variant)

    files = [str(tmp_path / f"{name}-result.json") for name in datasets]
    result = runner.invoke(app, ["benchmark", "table", *files])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "| benchmark | metric | msrvtt-result | kinetics400-result | pope-result | paper |"
    rows = {tuple(line.split(" | ")[:2]): line.split(" | ")[2:] for line in lines[2:] if line.startswith("| ")}
    pope_accuracy = 100 * results["pope"]["metrics"]["vqa_overall"]["accuracy"]
    assert rows[("| pope", "accuracy (all)")] == ["—", "—", f"{pope_accuracy:.1f}", "85.7 [2] |"]
    k400_top1 = 100 * results["kinetics400"]["metrics"]["classification"]["caption_mode"]["top1"]
    assert rows[("| kinetics400", "top-1 (caption mode)")] == ["—", f"{k400_top1:.1f}", "—", "64.8 [1] |"]
    t2v_rank = results["msrvtt"]["metrics"]["retrieval"]["exact"]["t2v_MdR"]
    assert rows[("| msrvtt", "t2v MdR")] == [f"{t2v_rank:.1f}", "—", "—", "— |"]  # no per-dataset figure in PAPER.md
    assert "[2] pope: VQA after SFT: 'POPE 85.7' (POPEv2 86.3 is another set) (PAPER.md" in result.output


@pytest.mark.parametrize(
    "name, writer, task",
    [
        ("ssv2", fixtures.ssv2, "classification"),
        ("coco", fixtures.karpathy_coco, "retrieval"),
        ("flickr30k", fixtures.karpathy_flickr30k, "retrieval"),
        ("gqa", fixtures.gqa, "vqa"),
        ("tallyqa", fixtures.tallyqa, "vqa"),
        ("activitynet", fixtures.activitynet, "retrieval"),
        ("didemo", fixtures.didemo, "retrieval"),
        ("msvd", fixtures.msvd, "retrieval"),
    ],
)
def test_every_other_benchmark_runs_through_the_command_line(trained, tmp_path, name, writer, task):
    expected = writer(tmp_path / name)
    result, out = run(trained, name, tmp_path / name)
    assert result.exit_code == 0, result.output
    reported = json.loads(out.read_text())
    assert reported["dataset"] == name and reported["missing_media"] == 0
    assert set(reported["metrics"]) >= {task} and reported["contamination"]["complete"]
    assert len(expected) == sum(1 for _ in (out.parent / f"{name}-result-import" / "manifest.jsonl").open())


def test_strict_refuses_a_benchmark_that_overlaps_the_training_data(trained, tmp_path):
    _, world, _ = trained
    fixtures.msrvtt(tmp_path / "msrvtt")
    training_clip = json.loads((world / "train.jsonl").read_text().splitlines()[0])["video"]
    shutil.copy(world / training_clip, tmp_path / "msrvtt" / "videos" / "all" / "video7012.mp4")
    result, out = run(trained, "msrvtt", tmp_path / "msrvtt", "--strict")
    assert result.exit_code == 2
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: --strict: contamination: OVERLAP with 1 training manifest(s): 1 identical files")
    assert error.endswith("no result written") and not out.exists()


def test_errors_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["benchmark", "import", "msrvtt", "--root", str(tmp_path / "empty"), "--out", "x.jsonl"]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'empty' / 'MSRVTT_JSFUSION_test.csv'}: file not found"
    result = runner.invoke(app, ["benchmark", "import", "nope", "--root", str(tmp_path), "--out", "x.jsonl"])
    assert result.exit_code == 2 and result.output.startswith("error: unknown benchmark 'nope'; known: msrvtt,")
    (tmp_path / "other.json").write_text(json.dumps({"results": []}))
    result = runner.invoke(app, ["benchmark", "table", str(tmp_path / "other.json")])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: {tmp_path / 'other.json'}: not a `vljepa benchmark run` result (no dataset/metrics)"
    )
