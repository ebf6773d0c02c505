"""The built-in video world: coloured shapes doing temporal events, written as ordinary mp4 + JSONL.

Why it exists: the demo (and the tests) must show the whole method working on a 2-core CPU with no
downloads, and must go through exactly the path a user's data takes (files and manifests, not
in-memory tensors). Each clip shows 1-3 shapes; one of them (the actor) does one of 12 events
(move left/right/up/down, grow, shrink, change colour, appear, disappear, stay still, bounce off a
wall, collide with another shape); the others stay still (or drift, in the harder setting).

Time matters by construction: for moves, growing/shrinking, colour changes and appearing/
disappearing, the actor's middle-frame position, size and visibility are drawn from the same
distribution whatever it does, so direction cannot be read from the middle frame (the demo's
single-frame control feeds exactly that frame), nor can most of what happened.

Everything is a function of (seed, split, index), so clips do not depend on generation order and the
same config always writes byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..progress import progress_bar
from .video import write_video
from .world_text import ACTION_BY_KEY, ACTIONS, COLOURS, DIRECTIONS, NUMBER_WORDS, SHAPES, meaning, paraphrases

SPLITS = {"train": 0, "val": 1, "test": 2, "stream": 3}
BACKGROUND = np.array([18, 18, 24], dtype=np.float32)
WORLD_PREDICTION_ACTIONS = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink",
                            "change_colour", "appear", "disappear")


@dataclass
class WorldConfig:
    seed: int = 0
    size: int = 64  # frame height = width, px (even)
    num_frames: int = 16  # frames per clip
    fps: float = 8.0
    num_train: int = 2000
    num_val: int = 200
    num_test: int = 200
    max_objects: int = 3
    shape_scale: float = 1.0  # multiplies shape sizes (smaller = harder)
    background_noise: float = 0.0  # std of a static background texture, in [0, 1] intensity units
    moving_distractors: bool = False  # non-acting shapes drift slowly (harder)
    num_streams: int = 3
    stream_seconds: float = 60.0


@dataclass
class Track:
    """One shape over time: per-frame centre, radius, colour name and visibility."""

    shape: str
    colour: list[str]
    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    visible: np.ndarray

    @property
    def first_colour(self) -> str:
        return self.colour[0]


@dataclass
class Scene:
    action: str
    actor: Track
    others: list[Track] = field(default_factory=list)
    partner: Track | None = None  # the other shape in a collision

    @property
    def tracks(self) -> list[Track]:
        return [self.actor, *self.others]


# --- geometry ------------------------------------------------------------------------------------

def _ramp(num_frames: int) -> np.ndarray:
    """Time in [-0.5, 0.5], centred on the middle frame."""
    return np.linspace(-0.5, 0.5, num_frames)


def actor_track(rng: np.random.Generator, action: str, config: WorldConfig, num_frames: int,
                shape: str, colour: str, other_colour: str) -> Track:
    """The acting shape. Its middle-frame state is drawn independently of the action."""
    size, t = config.size, _ramp(num_frames)
    base = rng.uniform(0.07, 0.10) * size * config.shape_scale
    distance = rng.uniform(0.30, 0.45) * size
    margin = base * 1.6 + 1
    half = distance / 2 if action.startswith("move_") else 0.0
    cx = rng.uniform(margin + half, size - margin - half)
    cy = rng.uniform(margin + half, size - margin - half)
    x, y = np.full(num_frames, cx), np.full(num_frames, cy)
    radius, visible = np.full(num_frames, base), np.ones(num_frames, dtype=bool)
    colours = [colour] * num_frames
    if action == "move_left":
        x = cx - distance * t
    elif action == "move_right":
        x = cx + distance * t
    elif action == "move_up":
        y = cy - distance * t
    elif action == "move_down":
        y = cy + distance * t
    elif action in ("grow", "shrink"):
        ratio = rng.uniform(1.7, 2.2)
        radius = base * ratio ** (t if action == "grow" else -t)
    elif action == "change_colour":
        switch = int(rng.integers(num_frames // 4, 3 * num_frames // 4 + 1))
        colours = [colour] * switch + [other_colour] * (num_frames - switch)
    elif action in ("appear", "disappear"):
        switch = int(rng.integers(num_frames // 4, 3 * num_frames // 4 + 1))
        visible = np.arange(num_frames) >= switch if action == "appear" else np.arange(num_frames) < switch
    elif action == "bounce":  # travel to a wall, touch it at a random moment near the middle, come back
        sign = rng.choice([-1, 1])
        hit = rng.uniform(0.35, 0.65) * (num_frames - 1)
        speed = rng.uniform(0.6, 0.9) * size / num_frames
        wall = base if sign < 0 else size - base
        position = wall - sign * speed * np.abs(np.arange(num_frames) - hit)
        if rng.integers(2):
            x = position
        else:
            y = position
    return Track(shape, colours, x.astype(float), y.astype(float), radius.astype(float), visible)


def collision_tracks(rng: np.random.Generator, config: WorldConfig, num_frames: int,
                     shapes: tuple[str, str], colours: tuple[str, str]) -> tuple[Track, Track]:
    """Two shapes approach along one axis, touch at a random moment near the middle, and part."""
    size = config.size
    radius = rng.uniform(0.07, 0.10, size=2) * size * config.shape_scale
    frames = np.arange(num_frames)
    meet = rng.uniform(0.4, 0.6) * (num_frames - 1)
    speed = rng.uniform(0.35, 0.5) * size / num_frames
    centre = rng.uniform(0.35, 0.65) * size
    across = rng.uniform(radius.max() + 2, size - radius.max() - 2)
    gap = np.abs(frames - meet) * speed
    first = centre - radius[0] - gap
    second = centre + radius[1] + gap
    horizontal = bool(rng.integers(2))
    tracks = []
    for along, r, shape, colour in ((first, radius[0], shapes[0], colours[0]), (second, radius[1], shapes[1], colours[1])):
        along = np.clip(along, r, size - r)
        x, y = (along, np.full(num_frames, across)) if horizontal else (np.full(num_frames, across), along)
        tracks.append(Track(shape, [colour] * num_frames, x, y, np.full(num_frames, r), np.ones(num_frames, bool)))
    return tracks[0], tracks[1]


def _clear_of(track: Track, x: float, y: float, r: float) -> bool:
    gaps = np.hypot(track.x - x, track.y - y) - (track.radius + r)
    return bool((gaps[track.visible] > 2).all()) if track.visible.any() else True


def distractor_track(rng: np.random.Generator, config: WorldConfig, num_frames: int, shape: str, colour: str,
                     placed: list[Track]) -> Track | None:
    """A shape that does nothing (or drifts a little), kept clear of the others; None if no room."""
    size = config.size
    for _ in range(50):
        r = rng.uniform(0.07, 0.10) * size * config.shape_scale
        x0, y0 = rng.uniform(r + 1, size - r - 1, size=2)
        drift = rng.uniform(-0.08, 0.08, size=2) * size if config.moving_distractors else np.zeros(2)
        t = _ramp(num_frames)
        x, y = np.clip(x0 + drift[0] * t, r, size - r), np.clip(y0 + drift[1] * t, r, size - r)
        if all(_clear_of(other, xi, yi, r) for other in placed for xi, yi in zip(x, y)):
            return Track(shape, [colour] * num_frames, x, y, np.full(num_frames, r), np.ones(num_frames, bool))
    return None


def make_scene(rng: np.random.Generator, config: WorldConfig, num_frames: int, action: str | None = None) -> Scene:
    action = action or ACTIONS[int(rng.integers(len(ACTIONS)))].key
    minimum = 2 if action == "collide" else 1
    count = int(rng.integers(minimum, max(minimum, config.max_objects) + 1))
    shapes = list(rng.permutation(SHAPES))  # distinct shapes and colours within a clip: every
    colours = list(rng.permutation(list(COLOURS)))  # question about "the red X" has one answer
    if action == "collide":
        actor, partner = collision_tracks(rng, config, num_frames, (shapes[0], shapes[1]), (colours[0], colours[1]))
        scene = Scene(action, actor, [partner], partner)
    else:
        actor = actor_track(rng, action, config, num_frames, shapes[0], colours[0], colours[-1])
        scene = Scene(action, actor)
    for index in range(len(scene.tracks), count):
        track = distractor_track(rng, config, num_frames, shapes[index], colours[index], scene.tracks)
        if track is not None:
            scene.others.append(track)
    return scene


# --- rendering -----------------------------------------------------------------------------------

def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return dx ** 2 + dy ** 2 <= r ** 2
    if shape == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    if shape == "triangle":  # apex up
        height = (dy + r) / (1.8 * r)
        return (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= height * r)
    if shape == "cross":
        arm = 0.34 * r
        return ((np.abs(dx) <= r) & (np.abs(dy) <= arm)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, config: WorldConfig, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames (T, S, S, 3); shapes drawn over a (possibly textured, static) background."""
    size = config.size
    coords = np.arange(size) + 0.5
    grid_y, grid_x = np.meshgrid(coords, coords, indexing="ij")
    background = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    if config.background_noise > 0:
        background += rng.normal(0, config.background_noise * 255, (size, size, 1)).astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for f in range(num_frames):
        canvas = background.copy()
        for track in scene.tracks:
            if track.visible[f]:
                mask = shape_mask(track.shape, grid_x - track.x[f], grid_y - track.y[f], track.radius[f])
                canvas[mask] = COLOURS[track.colour[f]]
        frames[f] = np.clip(canvas, 0, 255).astype(np.uint8)
    return frames


# --- language ------------------------------------------------------------------------------------

def scene_meaning_args(scene: Scene) -> dict:
    actor = scene.actor
    other_colour = actor.colour[-1] if scene.action == "change_colour" else None
    other_shape = None
    if scene.partner is not None:
        other_colour, other_shape = scene.partner.first_colour, scene.partner.shape
    return {"colour": actor.first_colour, "shape": actor.shape, "action": scene.action,
            "other_colour": other_colour, "other_shape": other_shape}


def _options(rng: np.random.Generator, answer: str, pool: list[str], count: int = 4) -> list[str]:
    wrong = [p for p in pool if p != answer]
    chosen = [answer] + [wrong[i] for i in rng.choice(len(wrong), size=count - 1, replace=False)]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def questions(rng: np.random.Generator, scene: Scene) -> list[dict]:
    """Typed multiple-choice questions; every answer is decidable from the whole clip."""
    actor, items = scene.actor, []
    name = f"{actor.first_colour} {actor.shape}"
    steady = [t for t in scene.tracks if len(set(t.colour)) == 1]  # colour asked only of unchanging shapes
    if steady:
        target = steady[int(rng.integers(len(steady)))]
        items.append({"question": f"what colour is the {target.shape}?", "answer": target.first_colour,
                      "options": _options(rng, target.first_colour, list(COLOURS)), "type": "colour"})
        items.append({"question": f"what shape is the {target.first_colour} object?", "answer": target.shape,
                      "options": _options(rng, target.shape, list(SHAPES)), "type": "shape"})
    count = NUMBER_WORDS[len(scene.tracks)]
    items.append({"question": "how many shapes are there?", "answer": count,
                  "options": _options(rng, count, list(NUMBER_WORDS[1:5])), "type": "count"})
    if scene.action.startswith("move_"):
        direction = scene.action.removeprefix("move_")
        items.append({"question": f"which way does the {name} move?", "answer": direction,
                      "options": list(DIRECTIONS), "type": "direction"})
    present = {(t.first_colour, t.shape) for t in scene.tracks}
    if rng.random() < 0.5:
        colour, shape = sorted(present)[int(rng.integers(len(present)))]
        answer = "yes"
    else:
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        colour, shape = absent[int(rng.integers(len(absent)))]
        answer = "no"
    items.append({"question": f"is there a {colour} {shape}?", "answer": answer, "options": ["yes", "no"], "type": "exists"})
    happened = ACTION_BY_KEY[scene.action].answer
    items.append({"question": f"what happens to the {name}?", "answer": happened,
                  "options": _options(rng, happened, [a.answer for a in ACTIONS]), "type": "what_happened"})
    return items


# --- writing -------------------------------------------------------------------------------------

def _rng(config: WorldConfig, split: str, index: int, purpose: int = 0) -> np.random.Generator:
    return np.random.default_rng([config.seed, SPLITS[split], index, purpose])


def clip_records(config: WorldConfig, split: str, index: int, out: Path) -> dict[str, list[dict]]:
    """Render one clip, write its mp4 (and state pair), and return its manifest records by file."""
    rng = _rng(config, split, index)
    scene = make_scene(rng, config, config.num_frames)
    frames = render(scene, config, config.num_frames, rng)
    video = f"clips/{split}_{index:05d}.mp4"
    write_video(out / video, frames, config.fps)
    args = scene_meaning_args(scene)
    text_rng = _rng(config, split, index, purpose=1)
    seen = paraphrases(**args)
    picks = text_rng.choice(len(seen), size=2 if split == "train" else 1, replace=False)
    key = meaning(**args)
    records = {split: [{"video": video, "caption": seen[i], "meaning": key} for i in picks]}
    records[split].append({"video": video, "label": ACTION_BY_KEY[scene.action].label})
    records[split] += [{"video": video, **q} for q in questions(text_rng, scene)]
    if split == "test":
        unseen = paraphrases(**args, heldout=True)
        records["test_heldout"] = [{"video": video, "caption": unseen[int(text_rng.integers(len(unseen)))], "meaning": key},
                                   {"video": video, "label": ACTION_BY_KEY[scene.action].heldout_label}]
    if split in ("val", "test") and scene.action in WORLD_PREDICTION_ACTIONS:
        states = f"states/{split}_{index:05d}.mp4"
        write_video(out / states, frames[[0, -1]], fps=1)
        answer = ACTION_BY_KEY[scene.action].answer
        pool = [ACTION_BY_KEY[a].answer for a in WORLD_PREDICTION_ACTIONS]
        records[f"world_prediction_{split}"] = [{
            "video": states, "question": "what action turns the first state into the last?", "answer": answer,
            "options": _options(text_rng, answer, pool), "type": "world_prediction"}]
    return records


def stream_record(config: WorldConfig, index: int, out: Path) -> dict:
    """A long video made of back-to-back events of 3-8 s, each with a timed caption."""
    rng = _rng(config, "stream", index)
    segments, clips, start = [], [], 0.0
    while start < config.stream_seconds - 1e-6:
        seconds = min(float(rng.uniform(3.0, 8.0)), config.stream_seconds - start)
        frames_count = max(2, int(round(seconds * config.fps)))
        scene = make_scene(rng, config, frames_count)
        clips.append(render(scene, config, frames_count, rng))
        end = start + frames_count / config.fps
        captions = paraphrases(**scene_meaning_args(scene))
        segments.append({"start": round(start, 3), "end": round(end, 3),
                         "caption": captions[int(rng.integers(len(captions)))], "meaning": meaning(**scene_meaning_args(scene))})
        start = end
    video = f"streams/stream_{index:03d}.mp4"
    write_video(out / video, np.concatenate(clips), config.fps)
    return {"video": video, "segments": segments}


def generate_world(out_dir: str | Path, config: WorldConfig | None = None, progress: bool = True) -> Path:
    """Write clips, state pairs, streams and manifests under `out_dir`; returns `out_dir`."""
    config = config or WorldConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifests: dict[str, list[dict]] = {}
    jobs = [(s, i) for s, n in (("train", config.num_train), ("val", config.num_val), ("test", config.num_test))
            for i in range(n)]
    with progress_bar("generating world", len(jobs) + config.num_streams, enabled=progress) as advance:
        for split, index in jobs:
            for name, records in clip_records(config, split, index, out).items():
                manifests.setdefault(name, []).extend(records)
            advance()
        streams = []
        for index in range(config.num_streams):
            streams.append(stream_record(config, index, out))
            advance()
    manifests["streams"] = streams
    for name, records in manifests.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "classes.txt").write_text("".join(a.label + "\n" for a in ACTIONS))
    (out / "classes_heldout.txt").write_text("".join(a.heldout_label + "\n" for a in ACTIONS))
    counts = {name: len(records) for name, records in manifests.items()}
    (out / "world.json").write_text(json.dumps({"config": asdict(config), "records": counts}, indent=2))
    return out
