"""Kinetics-400 / Kinetics-600, validation split: zero-shot classification over the dataset's class names.

Files expected under `--root` (the annotation CSVs of the public release, as the cvdfoundation
`kinetics-dataset` mirror lays them out, or the original DeepMind file names):
  annotations/val.csv         (or annotations/validate.csv, val.csv, validate.csv)
                              header `label,youtube_id,time_start,time_end,split` (Kinetics-600 adds `is_cc`)
  clips, one per row, in either common layout (the first found is used):
    <split>/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4   (the ActivityNet crawler; the label
                                                                        folder may have `_` for spaces)
    <split>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4           (the flat cvdfoundation layout)
  where <split> is the CSV's split column (`val`, `validate`) or the CSV's name; .mkv and .webm are
  accepted for .mp4, and unpadded times (`<youtube_id>_<time_start>_<time_end>`) as well.
Manifest: `{"video": <clip>, "label": <label>}` per row; `classes.txt` lists every label of the CSV (sorted),
so a class whose clips are all missing still competes.
Protocol: each class name Y-encoded, the nearest to the prediction wins; top-1 and top-5.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .common import VIDEO_SUFFIXES, BenchmarkDataError, Imported, find_file, first_existing, resolve_media

CSV_CANDIDATES = ("annotations/val.csv", "annotations/validate.csv", "val.csv", "validate.csv")
COLUMNS = {"label", "youtube_id", "time_start", "time_end", "split"}


def clip_candidates(root: Path, csv_stem: str, row: dict) -> list[Path]:
    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
    stems = [f"{row['youtube_id']}_{start:06d}_{end:06d}", f"{row['youtube_id']}_{start}_{end}"]
    label = row["label"]
    folders = []
    for split in dict.fromkeys([row["split"], csv_stem]):
        folders += [root / split / label, root / split / label.replace(" ", "_"), root / split]
    return [folder / (stem + suffix) for folder in folders for stem in stems for suffix in VIDEO_SUFFIXES]


def load_named(name: str, root: Path, allow_missing: bool) -> Imported:
    table = find_file(root, *CSV_CANDIDATES)
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not COLUMNS <= set(rows[0]):
        raise BenchmarkDataError(f"{table}: needs the columns {sorted(COLUMNS)}, found {list(rows[0])}")
    items = []
    for row in rows:
        candidates = clip_candidates(root, table.stem, row)
        items.append(({"label": row["label"].strip()}, first_existing(candidates), candidates[0]))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset=name,
        split=f"validation ({table.name})",
        protocol="classification: top-1/top-5, each class name Y-encoded, nearest prediction",
        records=records,
        classes=sorted({row["label"].strip() for row in rows}),
        missing_media=missing,
    )


def load_400(root: Path, allow_missing: bool = False) -> Imported:
    return load_named("kinetics400", root, allow_missing)


def load_600(root: Path, allow_missing: bool = False) -> Imported:
    return load_named("kinetics600", root, allow_missing)
