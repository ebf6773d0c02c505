"""The built-in world: deterministic, decodable, well-formed, and built so that time matters."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from vljepa.data.manifest import load_manifest
from vljepa.data.video import read_clip
from vljepa.data.world import WorldConfig, actor_track, generate_world
from vljepa.data.world_text import ACTIONS, SEEN_TEMPLATES, heldout_phrases, paraphrases

SMALL = dict(num_train=24, num_val=8, num_test=12, num_streams=1, stream_seconds=12.0, size=32)


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate_world(tmp_path_factory.mktemp("world"), WorldConfig(**SMALL), progress=False)


def test_generation_is_deterministic(world, tmp_path):
    again = generate_world(tmp_path / "again", WorldConfig(**SMALL), progress=False)
    assert _digest(world) == _digest(again)
    other = generate_world(tmp_path / "other", WorldConfig(**{**SMALL, "seed": 1}), progress=False)
    assert _digest(world)["train.jsonl"] != _digest(other)["train.jsonl"]


def test_every_record_decodes(world):
    for name in ("train", "val", "test", "test_heldout", "world_prediction_test", "streams"):
        records = load_manifest(world / f"{name}.jsonl")
        for path in {r.clip.path for r in records}:
            frames = read_clip(path, num_frames=4)
            assert frames.shape == (4, 32, 32, 3)
    stream = load_manifest(world / "streams.jsonl")[0]
    assert stream.segments[0]["start"] == 0.0 and stream.segments[-1]["end"] == pytest.approx(12.0, abs=0.2)


def test_classes_and_paraphrases():
    assert len(ACTIONS) >= 12
    for action in ACTIONS:
        seen = paraphrases("red", "circle", action.key, other_colour="blue", other_shape="square")
        predicates = {s.split("circle ", 1)[1] for s in seen}
        assert len(predicates) >= 3  # at least three different wordings of the event
        assert len(set(seen)) == len(action.seen) * len(SEEN_TEMPLATES)


def test_heldout_forms_never_appear_in_training_text(world):
    training_text = " | ".join(
        text for name in ("train", "val") for r in load_manifest(world / f"{name}.jsonl")
        for text in (r.caption, r.label, r.answer, r.question) if text)
    for phrase in heldout_phrases():
        assert phrase not in training_text, phrase
    heldout = load_manifest(world / "test_heldout.jsonl")
    assert sum(r.caption is not None for r in heldout) == 12 and sum(r.label is not None for r in heldout) == 12


def test_direction_is_not_in_the_middle_frame():
    """The actor's middle-frame position has the same distribution whether it moves left or right."""
    config = WorldConfig()
    middles = {}
    for action in ("move_left", "move_right"):
        tracks = [actor_track(np.random.default_rng(i), action, config, 16, "circle", "red", "blue") for i in range(2000)]
        middles[action] = np.array([(t.x[7] + t.x[8]) / 2 for t in tracks])
        assert all(abs(t.x[-1] - t.x[0]) > 0.25 * config.size for t in tracks)
    left, right = np.sort(middles["move_left"]), np.sort(middles["move_right"])
    assert abs(left.mean() - right.mean()) < 1.0 and np.abs(left - right).max() < 3.0


def test_questions_are_well_formed(world):
    records = [r for r in load_manifest(world / "train.jsonl") if r.question]
    types = Counter(r.type for r in records)
    assert set(types) >= {"colour", "shape", "count", "exists", "what_happened"}
    for r in records:
        assert r.answer in r.options and len(set(r.options)) == len(r.options)
        assert len(r.options) == (2 if r.type == "exists" else 4)
    answers = Counter(r.answer for r in records if r.type == "exists")
    assert abs(answers["yes"] - answers["no"]) <= 0.5 * len([r for r in records if r.type == "exists"])
    info = json.loads((world / "world.json").read_text())
    assert info["config"]["num_train"] == 24
