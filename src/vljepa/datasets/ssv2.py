"""Something-Something v2, validation split: zero-shot classification over the 174 action templates.

Files expected under `--root` (the public release: the labels zip and the `20bn-something-something-v2`
video folder):
  labels/labels.json          (or labels.json) {template without brackets: class id}
  labels/validation.json      (or validation.json) [{"id", "label", "template", "placeholders"}, ...]
  20bn-something-something-v2/<id>.webm   (or videos/<id>.webm, or <id>.webm in the root)
Class name: the record's `template` with its brackets removed ("Putting [something] on a surface" ->
"Putting something on a surface"), the paper's way and the key of labels.json; `classes.txt` lists all
174 keys of labels.json in id order.
Protocol: each class name Y-encoded, the nearest to the prediction wins; top-1 and top-5.
"""

from __future__ import annotations

from pathlib import Path

from .common import BenchmarkDataError, Imported, field_of, find_file, first_existing, read_json, resolve_media

VIDEO_FOLDERS = ("20bn-something-something-v2", "videos", ".")


def class_name(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def load(root: Path, allow_missing: bool = False) -> Imported:
    labels_file = find_file(root, "labels/labels.json", "labels.json")
    validation_file = find_file(root, "labels/validation.json", "validation.json")
    labels = read_json(labels_file)
    if not isinstance(labels, dict):
        raise BenchmarkDataError(f"{labels_file}: expected an object {{template: id}}")
    classes = sorted(labels, key=lambda name: int(labels[name]))
    items = []
    for number, entry in enumerate(read_json(validation_file)):
        where = f"{validation_file}: entry {number}"
        name = class_name(field_of(entry, "template", where))
        if name not in labels:
            raise BenchmarkDataError(f"{where}: template {name!r} is not a class of {labels_file}")
        video_id = field_of(entry, "id", where)
        candidates = [root / folder / f"{video_id}.webm" for folder in VIDEO_FOLDERS]
        items.append(({"label": name}, first_existing(candidates), candidates[0]))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset="ssv2",
        split="validation",
        protocol="classification: top-1/top-5, each template (brackets removed) Y-encoded, nearest prediction",
        records=records,
        classes=classes,
        missing_media=missing,
    )
