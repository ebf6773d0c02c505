"""JSONL manifests: the one record format every command reads (see docs/data.md); WebDataset
shards of the same records (`shards.py`) are read through `load_manifest` too.

One JSON object per line; `video` is a path (a video file, or an image as a one-frame video),
optionally cut by `start`/`end` seconds. A record carries any of: `caption`; `question` + `answer`
(+ `options`, `type`); `label`; `segments` (long streams). Unknown keys are kept in `extra` (the
built-in world adds `meaning`, the canonical meaning of a caption, used to count paraphrase hits in
retrieval).
Paths: a relative `video` is relative to the manifest's folder, and may leave it (`../videos/x.mp4`);
an absolute path is used as is. Both are allowed on purpose: a manifest is trusted input like a config
or a command line (it names files its author can read anyway), and datasets often keep manifests in a
folder beside the videos. Paths are resolved (`..`, symlinks) so that one file has one name in the
feature cache.
Every record is checked when the manifest is read, so a bad value stops the run at once with the file,
line and field, instead of hours into training: the texts (`caption`, `question`, `answer`, `label`,
`type`, the options and segment captions) must be non-empty strings (NaN, numbers, lists are refused),
an answer must be among its options, times must be finite numbers with 0 <= start < end, and the file
must be UTF-8. Long texts are accepted: the tokenizers truncate them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VljepaError

TEXT_KEYS = ("caption", "question", "answer", "label", "type")
KNOWN_KEYS = {"video", "start", "end", "options", "segments", *TEXT_KEYS}


class ManifestError(VljepaError, ValueError):
    """A manifest line is malformed; the message names the file and line."""


@dataclass(frozen=True)
class ClipRef:
    """One clip: a file and an optional time window (seconds)."""

    path: str
    start: float | None = None
    end: float | None = None


@dataclass
class Record:
    clip: ClipRef
    caption: str | None = None
    question: str | None = None
    answer: str | None = None
    options: list[str] | None = None
    type: str | None = None
    label: str | None = None
    segments: list[dict] | None = None
    extra: dict = field(default_factory=dict)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        kind = "an empty string" if isinstance(value, str) else f"{type(value).__name__} {_shown(value)}"
        raise ManifestError(f'{where}: "{name}" must be a non-empty string, got {kind}')
    return value


def _time(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ManifestError(f'{where}: "{name}" must be a number of seconds >= 0, got {_shown(value)}')
    return float(value)


def _window(item: dict, where: str) -> tuple[float | None, float | None]:
    start = _time(item["start"], where, "start") if item.get("start") is not None else None
    end = _time(item["end"], where, "end") if item.get("end") is not None else None
    if start is not None and end is not None and start >= end:
        raise ManifestError(f'{where}: "start" ({start}) must come before "end" ({end})')
    return start, end


def _segments(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        raise ManifestError(f'{where}: "segments" must be a list of objects, got {_shown(value)}')
    for number, segment in enumerate(value):
        if "start" not in segment or "end" not in segment:
            raise ManifestError(f'{where}: segments[{number}] needs "start" and "end"')
        _window(segment, f"{where}: segments[{number}]")
        _text(segment.get("caption"), f"{where}: segments[{number}]", "caption")
    return value


def parse_record(item: Any, manifest: Path, where: str) -> Record:
    """One manifest line's object -> a checked `Record`; `where` ("file:line") prefixes every error."""
    if not isinstance(item, dict) or "video" not in item:
        raise ManifestError(f'{where}: a record needs a "video" field')
    if ("question" in item) != ("answer" in item):
        raise ManifestError(f'{where}: "question" and "answer" go together')
    texts = {key: _text(item[key], where, key) for key in TEXT_KEYS if item.get(key) is not None}
    options = item.get("options")
    if options is not None:
        if not isinstance(options, list) or not options:
            raise ManifestError(f'{where}: "options" must be a non-empty list of strings, got {_shown(options)}')
        options = [_text(option, where, f"options[{i}]") for i, option in enumerate(options)]
        if "answer" in texts and texts["answer"] not in options:
            raise ManifestError(f'{where}: "answer" {texts["answer"]!r} is not among the options {options}')
    start, end = _window(item, where)
    video = _text(item["video"], where, "video")
    segments = _segments(item["segments"], where) if item.get("segments") is not None else None
    return Record(
        clip=ClipRef(str((manifest.parent / video).resolve()), start, end),
        options=options,
        segments=segments,
        extra={k: v for k, v in item.items() if k not in KNOWN_KEYS},
        **texts,
    )


def load_manifest(path: str | Path) -> list[Record]:
    """Every record of a JSONL manifest, checked; the first fault raises `ManifestError` naming file and line.
    It only reads the file (`shards.load_records` also takes WebDataset shards)."""
    path = Path(path)
    if path.suffix == ".tar" or (path.is_dir() and any(path.glob("*.tar"))):
        raise ManifestError(f"{path}: WebDataset shards, not a JSONL manifest (read them with load_records)")
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    records = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ManifestError(f"{where}: not UTF-8 text (byte {error.start}: {error.reason})") from error
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{where}: invalid JSON ({error})") from error
        records.append(parse_record(item, path, where))
    if not records:
        raise ManifestError(f"{path}: no records")
    return records


def class_names(records: list[Record], manifest_path: str | Path | None = None) -> list[str]:
    """The distinct labels in order of appearance, or `classes.txt` beside the manifest when it lists
    every one of them (it may add classes that this split lacks)."""
    labels = list(dict.fromkeys(r.label for r in records if r.label is not None))
    if manifest_path is not None:
        classes_file = Path(manifest_path).parent / "classes.txt"
        if classes_file.is_file():
            listed = [line.strip() for line in classes_file.read_text().splitlines() if line.strip()]
            if set(labels) <= set(listed):
                return listed
    return labels
