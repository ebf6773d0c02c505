"""The built-in video world: coloured shapes doing temporal events, written as ordinary mp4 + JSONL.

Why it exists: the demo (and the tests) must show the whole method working on a 2-core CPU with no
downloads, and must go through exactly the path a user's data takes (video files and manifests, not
in-memory tensors). Each clip shows 1-3 shapes; one of them (the actor) does one of 12 events (move
left/right/up/down, grow, shrink, change colour, appear, disappear, stay still, bounce off a wall,
collide with another shape); the others stay still (or drift slightly, in the harder setting).

Time matters by construction: whether the actor moves (any way), grows, shrinks, changes colour,
appears, disappears or stays still, its middle-frame position, size, colour and visibility follow one
law (and its size the law every other shape follows), so neither the direction of a move nor most of
what happened can be read from one frame; the demo's single-frame control feeds exactly that middle
frame. (No frame can be uninformative for every
event: a shape that moves left ends left of where it started, so if its first frame carried no
direction its last would carry all of it; centring the law on the middle frame splits the leak
evenly between the two ends.)

Everything is a function of (seed, split, index), so clips do not depend on generation order and the
same config always writes byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated

import numpy as np

from ..core.atomic import writable_folder
from ..core.config_loader import Bound, CheckedConfig, NonNegativeFloat, NonNegativeInt, PositiveFloat, load_config
from ..core.progress import progress_bar
from ..errors import ConfigError
from .video import write_video
from .world_text import (
    ACTION_BY_KEY,
    ACTIONS,
    COLOURS,
    DIRECTIONS,
    NUMBER_WORDS,
    QUESTIONS,
    SHAPES,
    Event,
    with_article,
)

SPLIT_IDS = {"train": 0, "val": 1, "test": 2, "stream": 3}
BACKGROUND = np.array([18, 18, 24], dtype=np.float32)
SUPERSAMPLE = 4  # anti-aliasing: samples per pixel side
STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # unit move in (x, y), y down
# Events whose outcome the first and last frames alone identify (stay still, bounce and collide do
# not: a bounce or a collision can end where it started, and so can nothing happening).
WORLD_PREDICTION_ACTIONS = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "grow",
    "shrink",
    "change_colour",
    "appear",
    "disappear",
)
STREAM_EVENT_SECONDS = (3.0, 8.0)
TRAIN_CAPTIONS_PER_CLIP = 3  # one per seen predicate phrasing, so training sees every paraphrase of a meaning


@dataclass
class WorldConfig(CheckedConfig):
    seed: NonNegativeInt = 0
    size: Annotated[int, Bound(">=", 16)] = 64  # frame height = width, px (even)
    num_frames: Annotated[int, Bound(">=", 4)] = 16  # frames per clip
    fps: PositiveFloat = 8.0
    num_train: NonNegativeInt = 6000  # training clips: the demo's accuracy grows with them (BENCHMARKS.md)
    num_val: NonNegativeInt = 200
    num_test: NonNegativeInt = 200
    # 1..max_objects shapes per clip (a collision always has two; the shapes in a clip are distinct)
    max_objects: Annotated[int, Bound(">=", 1), Bound("<=", len(SHAPES))] = 3
    shape_scale: Annotated[float, Bound(">", 0), Bound("<=", 1.5)] = 1.0  # multiplies shape sizes (smaller = harder)
    background_noise: NonNegativeFloat = 0.0  # std of a static per-pixel background texture, in [0, 1] intensity units
    moving_distractors: bool = False  # the shapes that do not act drift slowly (harder)
    num_streams: NonNegativeInt = 3  # long test videos of back-to-back events
    stream_seconds: PositiveFloat = 60.0

    @classmethod
    def from_overrides(cls, overrides: list[str] | tuple[str, ...] = ()) -> WorldConfig:
        """The default world with `field=value` overrides (`vljepa world`, `vljepa demo --world-option`)."""
        return load_config(cls, overrides=list(overrides))

    def check(self) -> None:
        if self.size % 2:
            raise ConfigError(f"size: must be even (the video codec needs it), got {self.size}")


@dataclass
class Track:
    """One shape over time: per-frame centre (px, y down), radius (half its extent), colour and visibility."""

    shape: str
    colours: list[str]
    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    visible: np.ndarray

    @property
    def colour(self) -> str:
        """Its colour at the start (the only one unless it changes colour)."""
        return self.colours[0]

    @property
    def steady(self) -> bool:
        return len(set(self.colours)) == 1

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    action: str
    actor: Track
    others: list[Track] = field(default_factory=list)
    partner: Track | None = None  # the other shape in a collision (also in `others`)

    @property
    def tracks(self) -> list[Track]:
        return [self.actor, *self.others]

    def event(self) -> Event:
        other_colour = other_shape = None
        if self.action == "change_colour":
            other_colour = self.actor.colours[-1]
        elif self.partner is not None:
            other_colour, other_shape = self.partner.colour, self.partner.shape
        return Event(self.actor.colour, self.actor.shape, self.action, other_colour, other_shape)


# --- geometry ------------------------------------------------------------------------------------


def _times(num_frames: int) -> np.ndarray:
    """Clip time in [-0.5, 0.5], 0 at the middle frame."""
    return np.linspace(-0.5, 0.5, num_frames)


def object_radius(rng: np.random.Generator, config: WorldConfig) -> float:
    """Resting size of any shape (the actor's size at mid-clip follows the same law)."""
    return float(rng.uniform(0.12, 0.20) * config.size * config.shape_scale)


def _still(shape: str, colour: str, x: float, y: float, radius: float, num_frames: int) -> Track:
    return Track(
        shape,
        [colour] * num_frames,
        np.full(num_frames, float(x)),
        np.full(num_frames, float(y)),
        np.full(num_frames, float(radius)),
        np.ones(num_frames, dtype=bool),
    )


def actor_track(
    rng: np.random.Generator,
    action: str,
    config: WorldConfig,
    num_frames: int,
    shape: str,
    colour: str,
    new_colour: str,
) -> Track:
    """The acting shape (any action but collide). Its middle-frame state does not depend on the action."""
    size, t = config.size, _times(num_frames)
    track = _still(shape, colour, 0.0, 0.0, object_radius(rng, config), num_frames)
    if action in ("grow", "shrink"):
        ratio = rng.uniform(1.4, 1.7)
        track.radius = track.radius * ratio ** (t if action == "grow" else -t)
    low, high = track.radius.max() + 1, size - track.radius.max() - 1  # centres that keep it in the frame
    if action.startswith("move_"):
        step_x, step_y = STEP[action.removeprefix("move_")]
        distance = rng.uniform(0.22, 0.30) * size
        half_x, half_y = abs(step_x) * distance / 2, abs(step_y) * distance / 2  # anywhere the move fits
        track.x = rng.uniform(low + half_x, high - half_x) + step_x * distance * t
        track.y = rng.uniform(low + half_y, high - half_y) + step_y * distance * t
        return track
    track.x[:], track.y[:] = rng.uniform(low, high, size=2)
    frames = np.arange(num_frames)
    if action == "bounce":  # to a wall, touching it at a random moment near the middle, and back
        hit = rng.uniform(0.4, 0.6) * (num_frames - 1)
        speed = rng.uniform(0.26, 0.34) * size / min(hit, num_frames - 1 - hit)  # shorter leg >= 26% of the frame
        radius = track.radius[0]
        from_wall = radius + speed * np.abs(frames - hit)
        along = from_wall if rng.integers(2) else size - from_wall
        if rng.integers(2):
            track.x = along
        else:
            track.y = along
    elif action in ("change_colour", "appear", "disappear"):
        switch = int(rng.integers(num_frames // 4, 3 * num_frames // 4 + 1))
        if action == "change_colour":
            track.colours = [colour] * switch + [new_colour] * (num_frames - switch)
        else:
            track.visible = frames >= switch if action == "appear" else frames < switch
    return track


def collision_tracks(
    rng: np.random.Generator, config: WorldConfig, num_frames: int, shapes: tuple[str, str], colours: tuple[str, str]
) -> tuple[Track, Track]:
    """Two shapes approach along one axis, touch at a random moment near the middle, and part."""
    size = config.size
    first_r, second_r = object_radius(rng, config), object_radius(rng, config)
    meet = rng.uniform(0.4, 0.6) * (num_frames - 1)
    room = (size - 2 * first_r - 2 * second_r - 2) / 2  # farthest each can be from the contact point
    reach = min(rng.uniform(0.2, 0.26) * size, room)
    speed = reach / max(meet, num_frames - 1 - meet)
    contact = 2 * first_r + reach + 1 + rng.uniform(0, 2 * (room - reach))  # where they touch, both kept in frame
    gap = speed * np.abs(np.arange(num_frames) - meet)
    across = rng.uniform(max(first_r, second_r) + 1, size - max(first_r, second_r) - 1)
    first = _still(shapes[0], colours[0], 0.0, across, first_r, num_frames)
    second = _still(shapes[1], colours[1], 0.0, across, second_r, num_frames)
    first.x, second.x = contact - first_r - gap, contact + second_r + gap
    if rng.integers(2):  # vertical instead
        first.x, first.y, second.x, second.y = first.y, first.x, second.y, second.x
    return first, second


def _clear_of(placed: list[Track], track: Track) -> bool:
    """True if `track`, anywhere on its path, keeps 2 px from every placed shape anywhere on theirs."""
    for other in placed:
        ox, oy, orad = other.x[other.visible], other.y[other.visible], other.radius[other.visible]
        gaps = np.hypot(ox[:, None] - track.x, oy[:, None] - track.y) - (orad[:, None] + track.radius)
        if (gaps <= 2).any():
            return False
    return True


def distractor_track(
    rng: np.random.Generator,
    config: WorldConfig,
    num_frames: int,
    shape: str,
    colour: str,
    placed: list[Track],
    drift: bool,
) -> Track | None:
    """A shape that does nothing (or drifts a little), clear of the others; None if there is no room."""
    size = config.size
    for _ in range(50):
        radius = object_radius(rng, config)
        track = _still(shape, colour, *rng.uniform(radius + 1, size - radius - 1, size=2), radius, num_frames)
        if drift:
            velocity = rng.uniform(-0.08, 0.08, size=2) * size
            track.x = np.clip(track.x + velocity[0] * _times(num_frames), radius, size - radius)
            track.y = np.clip(track.y + velocity[1] * _times(num_frames), radius, size - radius)
        if _clear_of(placed, track):
            return track
    return None


def make_scene(rng: np.random.Generator, config: WorldConfig, num_frames: int, action: str) -> Scene:
    """The actor (and partner, for a collision) plus up to max_objects shapes, distinct in shape and colour."""
    minimum = 2 if action == "collide" else 1
    count = int(rng.integers(minimum, max(minimum, config.max_objects) + 1))
    shapes = [str(s) for s in rng.permutation(SHAPES)]
    colours = [str(c) for c in rng.permutation(list(COLOURS))]  # the last one is never on screen at the start
    if action == "collide":
        pair = collision_tracks(rng, config, num_frames, (shapes[0], shapes[1]), (colours[0], colours[1]))
        actor, partner = pair if rng.integers(2) else pair[::-1]
        scene = Scene(action, actor, [partner], partner)
    else:
        scene = Scene(action, actor_track(rng, action, config, num_frames, shapes[0], colours[0], colours[-1]))
    drift = config.moving_distractors and action != "stay_still"  # staying still means nothing moves
    for index in range(len(scene.tracks), count):
        track = distractor_track(rng, config, num_frames, shapes[index], colours[index], scene.tracks, drift)
        if track is not None:
            scene.others.append(track)
    return scene


# --- rendering -----------------------------------------------------------------------------------


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Inside-the-shape test for offsets (dx, dy) from the centre; every shape fits in |dx|, |dy| <= r."""
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    if shape == "triangle":  # apex up, base at the bottom
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    if shape == "cross":
        arm = 0.38 * r
        return ((np.abs(dx) <= r) & (np.abs(dy) <= arm)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(shape: str, x: float, y: float, r: float, size: int) -> tuple[tuple[slice, slice], np.ndarray]:
    """The pixel box around a shape and the fraction of each pixel it covers (supersampled)."""
    x0, x1 = max(0, math.floor(x - r) - 1), min(size, math.ceil(x + r) + 1)
    y0, y1 = max(0, math.floor(y - r) - 1), min(size, math.ceil(y + r) + 1)
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    xs = (np.arange(x0, x1)[:, None] + offsets).ravel() - x
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel() - y
    inside = shape_mask(shape, xs[None, :], ys[:, None], r)
    cover = inside.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32)
    return (slice(y0, y1), slice(x0, x1)), cover


def render(scene: Scene, config: WorldConfig, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames (T, S, S, 3): anti-aliased shapes over a dark (optionally textured, static) background."""
    size = config.size
    background = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    if config.background_noise > 0:
        background += rng.normal(0, config.background_noise * 255, (size, size, 1)).astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for f in range(num_frames):
        canvas = background.copy()
        for track in scene.tracks:
            if track.visible[f]:
                box, cover = _coverage(track.shape, track.x[f], track.y[f], track.radius[f], size)
                colour = np.array(COLOURS[track.colours[f]], dtype=np.float32)
                canvas[box] += cover[..., None] * (colour - canvas[box])
        frames[f] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return frames


# --- questions -----------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, items: list | tuple):
    return items[int(rng.integers(len(items)))]


def _options(rng: np.random.Generator, answer: str, pool: list[str] | tuple[str, ...], count: int = 4) -> list[str]:
    wrong = [p for p in pool if p != answer]
    chosen = [answer] + [wrong[i] for i in rng.choice(len(wrong), size=count - 1, replace=False)]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _role_name(scene: Scene, config: WorldConfig) -> str | None:
    """A name for the actor by what it does ("object that grows"), when no other shape does that."""
    if scene.action in ("stay_still", "collide"):
        return None
    if config.moving_distractors and scene.action.startswith("move_"):
        return None
    return f"object that {ACTION_BY_KEY[scene.action].role}"


def _item(rng: np.random.Generator, kind: str, answer: str, options: list[str], **names: str) -> dict:
    return {"question": _pick(rng, QUESTIONS[kind]).format(**names), "answer": answer, "options": options, "type": kind}


def questions(rng: np.random.Generator, scene: Scene, config: WorldConfig) -> list[dict]:
    """Typed multiple-choice questions; each answer is unambiguous and decidable from the whole clip."""
    actor, role = scene.actor, _role_name(scene, config)
    items = []
    steady = [t for t in scene.tracks if t.steady]  # a shape that changes colour has no single colour
    if steady:
        target = _pick(rng, steady)
        by_role = role is not None and target is actor and rng.random() < 0.5
        items.append(
            _item(
                rng,
                "colour",
                target.colour,
                _options(rng, target.colour, list(COLOURS)),
                name=role if by_role else target.shape,
            )
        )
    target = _pick(rng, scene.tracks)  # only the actor may change colour, and then it has a role name
    by_role = role is not None and target is actor and (not target.steady or rng.random() < 0.5)
    items.append(
        _item(
            rng,
            "shape",
            target.shape,
            _options(rng, target.shape, SHAPES),
            name=role if by_role else f"{target.colour} object",
        )
    )
    count = NUMBER_WORDS[len(scene.tracks)]
    items.append(_item(rng, "count", count, _options(rng, count, NUMBER_WORDS[1:])))
    if scene.action.startswith("move_"):
        direction = scene.action.removeprefix("move_")
        items.append(_item(rng, "direction", direction, _options(rng, direction, DIRECTIONS), name=actor.name))
    shown = {(c, t.shape) for t in scene.tracks for c in t.colours}
    if rng.random() < 0.5:
        colour, shape = _pick(rng, sorted(shown))
        answer = "yes"
    else:
        colour, shape = _pick(rng, [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in shown])
        answer = "no"
    items.append(_item(rng, "exists", answer, ["yes", "no"], a_name=with_article(f"{colour} {shape}")))
    happened = ACTION_BY_KEY[scene.action].answer
    items.append(
        _item(rng, "what_happened", happened, _options(rng, happened, [a.answer for a in ACTIONS]), name=actor.name)
    )
    return items


# --- writing -------------------------------------------------------------------------------------


def _rng(config: WorldConfig, split: str, index: int, purpose: int = 0) -> np.random.Generator:
    """Purpose 0 draws the scene and pixels, 1 the text, so rewording never changes a video."""
    return np.random.default_rng([config.seed, SPLIT_IDS[split], index, purpose])


def clip_action(index: int) -> str:
    """Actions cycle with the clip index: every split is balanced over the classes."""
    return ACTIONS[index % len(ACTIONS)].key


def caption_records(
    rng: np.random.Generator, video: str, event: Event, count: int, heldout: bool = False
) -> list[dict]:
    """`count` captions of one event, each with a different predicate phrasing and a random template."""
    groups = event.paraphrases(heldout)
    return [
        {"video": video, "caption": _pick(rng, groups[g]), "meaning": event.meaning}
        for g in rng.choice(len(groups), size=count, replace=False)
    ]


def world_prediction_record(rng: np.random.Generator, states: str, action: str) -> dict:
    answer = ACTION_BY_KEY[action].answer
    pool = [ACTION_BY_KEY[a].answer for a in WORLD_PREDICTION_ACTIONS]
    return {
        "video": states,
        "question": "what action turns the first state into the last?",
        "answer": answer,
        "options": _options(rng, answer, pool),
        "type": "world_prediction",
    }


def clip_scene(config: WorldConfig, split: str, index: int) -> tuple[Scene, np.ndarray]:
    """The scene of clip `index` of `split` and its frames (T, S, S, 3)."""
    rng = _rng(config, split, index)
    scene = make_scene(rng, config, config.num_frames, clip_action(index))
    return scene, render(scene, config, config.num_frames, rng)


def form_labels(scene: Scene) -> dict[str, str]:
    """What a frozen encoder's tokens should make legible, per clip, for `vljepa probe`: the acting shape's
    form and colour (only where one shape is singled out by what it does, and for colour only where it
    keeps one), how many shapes there are, and each shape's colour ("colour of the circle": binding a
    colour to a form among up to three shapes)."""
    labels = {"count": NUMBER_WORDS[len(scene.tracks)]}
    if scene.action not in ("stay_still", "collide"):
        labels["shape"] = scene.actor.shape
        if scene.actor.steady:
            labels["colour"] = scene.actor.colour
    for track in scene.tracks:
        if track.steady:
            labels[f"colour of the {track.shape}"] = track.colour
    return labels


def clip_records(config: WorldConfig, split: str, index: int, out: Path) -> dict[str, list[dict]]:
    """Render one clip, write its mp4 (and its end-state pair), and return its records by manifest name."""
    scene, frames = clip_scene(config, split, index)
    video = f"clips/{split}_{index:05d}.mp4"
    write_video(out / video, frames, config.fps)
    text_rng, event, action = _rng(config, split, index, purpose=1), scene.event(), ACTION_BY_KEY[scene.action]
    records = {
        split: [
            *caption_records(text_rng, video, event, TRAIN_CAPTIONS_PER_CLIP if split == "train" else 1),
            {"video": video, "label": action.label, "probe": form_labels(scene)},
            *({"video": video, **q} for q in questions(text_rng, scene, config)),
        ]
    }
    if split == "test":
        records["test_heldout"] = [
            *caption_records(text_rng, video, event, 1, heldout=True),
            {"video": video, "label": action.heldout_label},
        ]
    if split in ("val", "test") and scene.action in WORLD_PREDICTION_ACTIONS:
        states = f"states/{split}_{index:05d}.mp4"
        write_video(out / states, frames[[0, -1]], fps=1)
        records[f"world_prediction_{split}"] = [world_prediction_record(text_rng, states, scene.action)]
    return records


def event_lengths(rng: np.random.Generator, total: int, shortest: int, longest: int) -> list[int]:
    """Random lengths in [shortest, longest] summing to `total` (one shorter event if total < shortest)."""
    lengths, remaining = [], total
    while remaining > 0:
        if remaining <= longest:
            length = remaining
        else:  # leave at least `shortest` for the rest
            length = int(rng.integers(shortest, min(longest, remaining - shortest) + 1))
        lengths.append(length)
        remaining -= length
    return lengths


def stream_record(config: WorldConfig, index: int, out: Path) -> dict:
    """A long video of back-to-back events of 3-8 s, each with a timed seen-form caption."""
    rng = _rng(config, "stream", index)
    shortest, longest = (max(4, round(s * config.fps)) for s in STREAM_EVENT_SECONDS)
    total = max(4, round(config.stream_seconds * config.fps))  # an event needs a few frames to happen in
    segments, clips, start = [], [], 0
    for length in event_lengths(rng, total, shortest, longest):
        scene = make_scene(rng, config, length, _pick(rng, ACTIONS).key)
        clips.append(render(scene, config, length, rng))
        event = scene.event()
        segments.append(
            {
                "start": round(start / config.fps, 3),
                "end": round((start + length) / config.fps, 3),
                "caption": _pick(rng, _pick(rng, event.paraphrases())),
                "meaning": event.meaning,
            }
        )
        start += length
    video = f"streams/stream_{index:03d}.mp4"
    write_video(out / video, np.concatenate(clips), config.fps)
    return {"video": video, "segments": segments}


def stream_records(config: WorldConfig, index: int, out: Path) -> dict[str, list[dict]]:
    return {"streams": [stream_record(config, index, out)]}


def _run(job: Callable[[], dict[str, list[dict]]]) -> dict[str, list[dict]]:
    return job()


def generate_world(
    out_dir: str | Path, config: WorldConfig | None = None, progress: bool = True, workers: int | None = None
) -> Path:
    """Write clips, end-state pairs, streams and manifests under `out_dir`; returns `out_dir`.
    Clips and streams are rendered by `workers` processes (default: one per CPU); each is a function
    of (seed, split, index) alone, so the files do not depend on the number of workers."""
    config = config or WorldConfig()
    out = writable_folder(out_dir)
    clip_counts = {"train": config.num_train, "val": config.num_val, "test": config.num_test}
    manifests: dict[str, list[dict]] = {
        name: []
        for name in ("train", "val", "test", "test_heldout", "world_prediction_val", "world_prediction_test", "streams")
    }
    jobs = [
        *(
            partial(clip_records, config, split, index, out)
            for split, count in clip_counts.items()
            for index in range(count)
        ),
        *(partial(stream_records, config, index, out) for index in range(config.num_streams)),
    ]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    with (
        progress_bar("generating world", len(jobs), enabled=progress) as advance,
        ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool,
    ):
        for results in pool.map(_run, jobs, chunksize=16) if pool is not None else map(_run, jobs):
            for name, records in results.items():
                manifests[name].extend(records)
            advance()
    for name, records in manifests.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "classes.txt").write_text("".join(a.label + "\n" for a in ACTIONS))
    (out / "classes_heldout.txt").write_text("".join(a.heldout_label + "\n" for a in ACTIONS))
    directions = [a.label for a in ACTIONS if a.key.startswith("move_")]
    (out / "probe_tasks.json").write_text(json.dumps({"direction": directions}) + "\n")
    summary = {
        "config": asdict(config),
        "clips": clip_counts,
        "records": {name: len(records) for name, records in manifests.items()},
    }
    (out / "world.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out
