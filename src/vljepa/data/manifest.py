"""JSONL manifests: the one data format every command reads (see the README's "Data format").

One JSON object per line; `video` is a path relative to the manifest's folder (a video file, or an
image as a one-frame video), optionally cut by `start`/`end` seconds. A record carries any of:
`caption`; `question` + `answer` (+ `options`, `type`); `label`; `segments` (long streams).
Unknown keys are kept in `extra` (the built-in world adds `meaning`, the canonical meaning of a
caption, used to count paraphrase hits in retrieval).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VljepaError

KNOWN_KEYS = {"video", "start", "end", "caption", "question", "answer", "options", "type", "label", "segments"}


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


def load_manifest(path: str | Path) -> list[Record]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{path}:{number}: invalid JSON ({error})") from error
        if not isinstance(item, dict) or "video" not in item:
            raise ManifestError(f"{path}:{number}: a record needs a \"video\" field")
        if ("question" in item) != ("answer" in item):
            raise ManifestError(f"{path}:{number}: \"question\" and \"answer\" go together")
        clip = ClipRef(str((path.parent / item["video"]).resolve()), item.get("start"), item.get("end"))
        records.append(Record(
            clip=clip, caption=item.get("caption"), question=item.get("question"), answer=item.get("answer"),
            options=item.get("options"), type=item.get("type"), label=item.get("label"),
            segments=item.get("segments"), extra={k: v for k, v in item.items() if k not in KNOWN_KEYS},
        ))
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
