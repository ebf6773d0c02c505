"""The built-in world: deterministic, decodable, well-formed, truthful, and built so that time matters."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from vljepa.data.manifest import load_manifest
from vljepa.data.video import read_clip
from vljepa.data.world import WorldConfig, actor_track, clip_scene, generate_world
from vljepa.data.world_text import (
    ACTION_BY_KEY,
    ACTIONS,
    COLOURS,
    HELDOUT_TEMPLATES,
    NUMBER_WORDS,
    SEEN_TEMPLATES,
    Event,
    heldout_phrases,
)

TINY = WorldConfig(num_train=24, num_val=8, num_test=8, num_streams=1, stream_seconds=12.0, size=32)
MANIFESTS = ("train", "val", "test", "test_heldout", "world_prediction_val", "world_prediction_test", "streams")


def _digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate_world(tmp_path_factory.mktemp("world"), TINY, progress=False, workers=2)


def test_generation_is_deterministic(world, tmp_path):
    first = _digest(world)
    assert _digest(generate_world(tmp_path / "again", TINY, progress=False, workers=1)) == first  # fixture: 2 workers
    other = _digest(generate_world(tmp_path / "other", WorldConfig(**{**vars(TINY), "seed": 1}), progress=False))
    assert other.keys() == first.keys()
    assert other["train.jsonl"] != first["train.jsonl"]
    assert other["clips/train_00000.mp4"] != first["clips/train_00000.mp4"]


def test_config_is_checked():
    for bad in ({"size": 33}, {"max_objects": 5}, {"num_frames": 2}):
        with pytest.raises(ValueError):
            WorldConfig(**bad)


def test_config_from_overrides():
    config = WorldConfig.from_overrides(["num_train=2000", "moving_distractors=true", "shape_scale=0.7"])
    assert (config.num_train, config.moving_distractors, config.shape_scale) == (2000, True, 0.7)
    assert config.size == WorldConfig().size
    with pytest.raises(ValueError, match="num_trian: unknown config key"):
        WorldConfig.from_overrides(["num_trian=2000"])


def test_every_record_decodes(world):
    for name in MANIFESTS:
        records = load_manifest(world / f"{name}.jsonl")
        for path in {r.clip.path for r in records}:
            assert read_clip(path, num_frames=4).shape == (4, 32, 32, 3)
    info = json.loads((world / "world.json").read_text())
    assert info["config"]["num_train"] == 24 and info["clips"] == {"train": 24, "val": 8, "test": 8}
    segments = load_manifest(world / "streams.jsonl")[0].segments
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(12.0)
    for before, after in zip(segments, segments[1:]):
        assert before["end"] == after["start"]
    assert all(3.0 <= s["end"] - s["start"] <= 8.0 for s in segments)


def test_classes_and_paraphrases(world):
    classes = (world / "classes.txt").read_text().splitlines()
    heldout = (world / "classes_heldout.txt").read_text().splitlines()
    assert len(classes) == len(set(classes)) >= 12 and len(heldout) == len(classes) and not set(heldout) & set(classes)
    assert {r.label for r in load_manifest(world / "train.jsonl") if r.label} == set(classes)
    for action in ACTIONS:
        event = Event("red", "circle", action.key, "blue", "square")
        for heldout_form, templates in ((False, SEEN_TEMPLATES), (True, HELDOUT_TEMPLATES)):
            groups = event.paraphrases(heldout_form)
            predicates = {caption.split("circle ", 1)[1] for group in groups for caption in group}
            assert len(predicates) == len(groups) and all(len(set(g)) == len(templates) for g in groups)
        assert len(event.paraphrases()) >= 3  # at least three wordings of the event itself
    one_way = Event("red", "circle", "collide", "blue", "square")
    assert one_way.meaning == Event("blue", "square", "collide", "red", "circle").meaning


def test_heldout_forms_never_appear_in_training_text(world):
    training_text = " | ".join(
        text
        for name in ("train", "val")
        for r in load_manifest(world / f"{name}.jsonl")
        for text in (r.caption, r.label, r.question, r.answer)
        if text
    )
    for phrase in heldout_phrases():
        assert phrase not in training_text, phrase
    test = load_manifest(world / "test.jsonl")
    heldout = load_manifest(world / "test_heldout.jsonl")
    meanings = {r.clip: r.extra["meaning"] for r in test if r.caption}
    captions = [r for r in heldout if r.caption]
    assert len(captions) == TINY.num_test and sum(r.label is not None for r in heldout) == TINY.num_test
    for r in captions:
        assert r.extra["meaning"] == meanings[r.clip]
        assert sum(phrase in r.caption for phrase in heldout_phrases()) >= 2  # a held-out template and predicate


def test_direction_and_change_are_not_in_the_middle_frame():
    """The actor's middle-frame position (and size) follows one law whatever it does; moves are large."""
    config, rng = WorldConfig(), np.random.default_rng(0)
    tracks = {
        action: [actor_track(rng, action, config, 16, "circle", "red", "blue") for _ in range(3000)]
        for action in ("move_left", "move_right", "grow", "shrink")
    }
    middle = {a: np.sort([(t.x[7] + t.x[8]) / 2 for t in ts]) for a, ts in tracks.items()}
    assert np.abs(middle["move_left"] - middle["move_right"]).max() < 3.0  # quantiles agree within 3 px of 64
    sizes = {a: np.sort([np.sqrt(t.radius[7] * t.radius[8]) for t in ts]) for a, ts in tracks.items()}
    assert np.abs(sizes["grow"] - sizes["shrink"]).max() < 0.5
    for action in ("move_left", "move_right"):
        assert all(abs(t.x[-1] - t.x[0]) >= 0.22 * config.size and np.ptp(t.y) == 0 for t in tracks[action])
    # the start itself leaks some (unavoidably: see world.py), but left and right starts overlap widely
    left, right = ([t.x[0] for t in tracks[a]] for a in ("move_left", "move_right"))
    assert min(max(left), max(right)) - max(min(left), min(right)) > 0.2 * config.size


def test_answers_are_true_to_the_scene(world):
    for split, count in (("train", TINY.num_train), ("val", TINY.num_val)):
        records = load_manifest(world / f"{split}.jsonl")
        for index in range(count):
            scene, _ = clip_scene(TINY, split, index)
            clip = [r for r in records if r.clip.path.endswith(f"clips/{split}_{index:05d}.mp4")]
            shown = {f"{c} {t.shape}" for t in scene.tracks for c in t.colours}
            for r in clip:
                if r.label:
                    assert r.label == ACTION_BY_KEY[scene.action].label
                    form = r.extra["probe"]
                    assert form["count"] == NUMBER_WORDS[len(scene.tracks)]
                    singled_out = scene.action not in ("stay_still", "collide")
                    assert form.get("shape") == (scene.actor.shape if singled_out else None)
                    assert form.get("colour") == (scene.actor.colour if singled_out and scene.actor.steady else None)
                    bound = {k.removeprefix("colour of the "): v for k, v in form.items() if k.startswith("colour of")}
                    assert bound == {t.shape: t.colour for t in scene.tracks if t.steady}
                elif r.caption:
                    assert r.extra["meaning"] == scene.event().meaning
                elif r.type == "count":
                    assert r.answer == NUMBER_WORDS[len(scene.tracks)]
                elif r.type == "colour":
                    assert r.answer in {t.colour for t in scene.tracks if t.steady}
                elif r.type == "exists":
                    assert (r.answer == "yes") == (" ".join(r.question.rstrip("?").split()[-2:]) in shown)
                elif r.type == "what_happened":
                    assert r.answer == ACTION_BY_KEY[scene.action].answer
                elif r.type == "direction":
                    assert scene.action == f"move_{r.answer}"


def test_direction_answers_match_the_pixels(world):
    """Decoded video: the actor's colour mass moves the way the direction answer says."""
    steps = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    for r in load_manifest(world / "train.jsonl"):
        if r.type != "direction":
            continue
        colour = np.array(COLOURS[r.question.split(" the ")[1].split()[0]], dtype=float)
        frames = read_clip(r.clip.path, num_frames=16).numpy().astype(float)
        centres = []
        for frame in frames[[0, -1]]:
            ys, xs = np.nonzero(np.linalg.norm(frame - colour, axis=-1) < 60)
            centres.append(np.array([xs.mean(), ys.mean()]))
        assert np.dot(centres[1] - centres[0], steps[r.answer]) > 0.2 * TINY.size


def test_questions_are_well_formed(world):
    records = [r for name in ("train", "val", "test") for r in load_manifest(world / f"{name}.jsonl") if r.question]
    types = Counter(r.type for r in records)
    assert set(types) == {"colour", "shape", "count", "direction", "exists", "what_happened"}
    for r in records:
        assert r.answer in r.options and len(set(r.options)) == len(r.options)
        assert len(r.options) == (2 if r.type == "exists" else 4)
    answers = Counter(r.answer for r in records if r.type == "exists")
    assert abs(answers["yes"] - answers["no"]) <= 0.3 * types["exists"]
    for name in ("world_prediction_val", "world_prediction_test"):
        for r in load_manifest(world / f"{name}.jsonl"):
            assert r.type == "world_prediction" and r.answer in r.options and len(set(r.options)) == 4
            assert read_clip(r.clip.path, num_frames=2).shape[0] == 2
