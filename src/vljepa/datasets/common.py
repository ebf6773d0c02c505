"""What every importer shares: finding the dataset's files, the import result, writing it as a manifest.

Design decisions (ours; the paper publishes no evaluation code):
- Importers never download: the user points `--root` at the files of the public distribution they have.
  A missing annotation file is an error naming the exact path expected (and the other names accepted).
- A missing video or image is an error naming the first one and counting the rest, because a score on a
  subset is not the benchmark's score; `allow_missing=True` (`--allow-missing`) drops those records
  instead and the count is recorded in the result (Kinetics videos, for one, vanish from YouTube).
- The manifest holds paths relative to its folder (the manifest contract), so it can move with the data.
  Beside it: `classes.txt` (the dataset's full class list, which `class_names` prefers to the labels
  present) and `benchmark.json` (dataset, split, protocol, answer vocabulary, missing media).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import VljepaError

BENCHMARK_INFO_FILE = "benchmark.json"
CLASSES_FILE = "classes.txt"
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov")


class BenchmarkDataError(VljepaError, FileNotFoundError):
    """A benchmark's file is missing or not in its public format; the message names the file."""


@dataclass
class Imported:
    """A benchmark split as manifest records (absolute media paths) and what its protocol needs."""

    dataset: str
    split: str
    protocol: str
    records: list[dict]
    classes: list[str] | None = None
    answer_vocabulary: str | None = None
    missing_media: list[str] = field(default_factory=list)


def find_file(root: Path, *candidates: str) -> Path:
    """The first of `candidates` (paths under `root`) that exists; else an error naming them all."""
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    others = f" (or {', '.join(str(root / c) for c in candidates[1:])})" if len(candidates) > 1 else ""
    raise BenchmarkDataError(f"{root / candidates[0]}: file not found{others}")


def first_existing(paths: Iterable[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BenchmarkDataError(f"{path}: not valid JSON ({error})") from error


def read_jsonl(path: Path) -> list:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise BenchmarkDataError(f"{path}:{number}: not valid JSON ({error})") from error
    return items


def field_of(item: dict, key: str, where: str):
    """`item[key]`, or an error naming the file/entry and the missing field."""
    if not isinstance(item, dict) or key not in item:
        raise BenchmarkDataError(f'{where}: no "{key}" field (not the public format?)')
    return item[key]


def resolve_media(items: list[tuple[dict, Path | None, Path]], allow_missing: bool) -> tuple[list[dict], list[str]]:
    """(records with their `video` set, missing files). A missing file raises naming the first one and
    counting the others, unless `allow_missing`: then its records are dropped and the file listed."""
    missing = list(dict.fromkeys(str(expected) for _, found, expected in items if found is None))
    if missing and not allow_missing:
        total = len({str(expected) for _, _, expected in items})
        more = f" (and {len(missing) - 1} more of {total} files)" if len(missing) > 1 else ""
        raise BenchmarkDataError(
            f"{missing[0]}: file not found{more}; pass --allow-missing to evaluate on the files present"
        )
    return [{"video": str(found), **record} for record, found, _ in items if found is not None], missing


def write_import(imported: Imported, manifest: str | Path) -> Path:
    """Write the manifest (paths relative to its folder), `classes.txt` and `benchmark.json` beside it."""
    manifest = Path(manifest)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    if not imported.records:
        raise BenchmarkDataError(f"{imported.dataset}: no records with media to import")
    folder = manifest.parent.resolve()
    lines = []
    for record in imported.records:
        relative = os.path.relpath(Path(record["video"]).resolve(), folder)
        lines.append(json.dumps({**record, "video": relative}, ensure_ascii=False) + "\n")
    manifest.write_text("".join(lines), encoding="utf-8")
    if imported.classes:
        (manifest.parent / CLASSES_FILE).write_text("".join(c + "\n" for c in imported.classes), encoding="utf-8")
    info = {k: v for k, v in asdict(imported).items() if k not in ("records", "classes", "missing_media")}
    info.update(
        num_records=len(imported.records),
        num_classes=len(imported.classes or []),
        missing_media=len(imported.missing_media),
        missing_examples=imported.missing_media[:20],
    )
    (manifest.parent / BENCHMARK_INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return manifest
