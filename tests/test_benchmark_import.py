"""Importers: tiny copies of each benchmark in its public layout -> manifests, checked record by record."""

from __future__ import annotations

import json
import os

import benchmark_fixtures as fixtures
import pytest

from vljepa.data.manifest import class_names, load_manifest
from vljepa.datasets import BenchmarkDataError, import_benchmark


def imported(tmp_path, name, writer):
    root = tmp_path / "data"
    expected = writer(root)
    manifest = import_benchmark(name, root, tmp_path / "out" / f"{name}.jsonl")
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    for line in lines:  # paths are relative to the manifest's folder, pointing into the dataset root
        line["video"] = os.path.relpath((manifest.parent / line["video"]).resolve(), root.resolve())
    return lines, expected, manifest


@pytest.mark.parametrize(
    "name, writer",
    [
        ("msrvtt", fixtures.msrvtt),
        ("ssv2", fixtures.ssv2),
        ("pope", fixtures.pope),
        ("coco", fixtures.karpathy_coco),
        ("flickr30k", fixtures.karpathy_flickr30k),
        ("gqa", fixtures.gqa),
        ("tallyqa", fixtures.tallyqa),
        ("activitynet", fixtures.activitynet),
        ("didemo", fixtures.didemo),
        ("msvd", fixtures.msvd),
    ],
)
def test_importer_maps_every_record(tmp_path, name, writer):
    lines, expected, manifest = imported(tmp_path, name, writer)
    assert lines == expected
    assert len(load_manifest(manifest)) == len(expected)  # a valid manifest whose media exists
    info = json.loads((manifest.parent / "benchmark.json").read_text())
    assert info["dataset"] == name and info["num_records"] == len(expected) and info["missing_media"] == 0


def test_ssv2_classes_are_every_template_in_id_order(tmp_path):
    _, _, manifest = imported(tmp_path, "ssv2", fixtures.ssv2)
    assert class_names(load_manifest(manifest), manifest) == list(fixtures.SSV2_LABELS)


def test_kinetics_finds_both_layouts_and_names_a_missing_clip(tmp_path):
    root = tmp_path / "k400"
    expected = fixtures.kinetics(root)
    with pytest.raises(
        BenchmarkDataError, match=r"val/zumba/missingclip1_000003_000013\.mp4: file not found; pass --allow-missing"
    ):
        import_benchmark("kinetics400", root, tmp_path / "out" / "k.jsonl")
    manifest = import_benchmark("kinetics400", root, tmp_path / "out" / "k.jsonl", allow_missing=True)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [{**line, "video": os.path.relpath(manifest.parent / line["video"], root)} for line in lines] == expected
    assert class_names(load_manifest(manifest), manifest) == ["abseiling", "air drumming", "playing guitar", "zumba"]
    info = json.loads((manifest.parent / "benchmark.json").read_text())
    assert info["missing_media"] == 1 and info["missing_examples"] == [
        str(root / "val/zumba/missingclip1_000003_000013.mp4")
    ]


@pytest.mark.parametrize(
    "name, writer, removed",
    [
        ("msrvtt", fixtures.msrvtt, "MSRVTT_JSFUSION_test.csv"),
        ("ssv2", fixtures.ssv2, "labels/validation.json"),
        ("pope", fixtures.pope, "coco_pope_popular.json"),
        ("coco", fixtures.karpathy_coco, "dataset_coco.json"),
        ("gqa", fixtures.gqa, "testdev_balanced_questions.json"),
        ("tallyqa", fixtures.tallyqa, "test.json"),
        ("activitynet", fixtures.activitynet, "val_1.json"),
        ("didemo", fixtures.didemo, "test_data.json"),
        ("msvd", fixtures.msvd, "test_list.txt"),
        ("msrvtt", fixtures.msrvtt, "videos/all/video7011.mp4"),
        ("pope", fixtures.pope, "val2014/COCO_val2014_000000429109.jpg"),
    ],
)
def test_a_missing_file_is_named(tmp_path, name, writer, removed):
    root = tmp_path / "data"
    writer(root)
    (root / removed).unlink()
    with pytest.raises(BenchmarkDataError, match=f"^{root / removed}: file not found"):
        import_benchmark(name, root, tmp_path / "out.jsonl")


def test_a_wrong_format_names_the_file_and_field(tmp_path):
    root = tmp_path / "data"
    fixtures.gqa(root)
    (root / "testdev_balanced_questions.json").write_text(json.dumps({"1": {"question": "q?", "answer": "a"}}))
    with pytest.raises(BenchmarkDataError, match='testdev_balanced_questions.json: question 1: no "imageId" field'):
        import_benchmark("gqa", root, tmp_path / "out.jsonl")
