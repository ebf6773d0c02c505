"""MSR-VTT, 1K-A test split (Yu et al. 2018's JSFusion split): text <-> video retrieval over 1,000 videos.

Files expected under `--root` (the layout of the widely shared `msrvtt_data` release):
  MSRVTT_JSFUSION_test.csv    header `key,vid_key,video_id,sentence` (some copies add a leading unnamed
                              index column): one row per test video, with its one query sentence
  videos/all/<video_id>.mp4   the videos (`video7010.mp4`, ...)
Manifest: one record per row, `{"video": videos/all/<video_id>.mp4, "caption": sentence}`.
Protocol: the standard 1K-A one: 1,000 sentences against 1,000 videos, each sentence's own video the only
hit (t2v), and each video's own sentence the only hit (v2t).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .common import BenchmarkDataError, Imported, find_file, resolve_media

CSV_FILE = "MSRVTT_JSFUSION_test.csv"


def load(root: Path, allow_missing: bool = False) -> Imported:
    table = find_file(root, CSV_FILE)
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"video_id", "sentence"} <= set(rows[0]):
        raise BenchmarkDataError(f"{table}: needs the columns video_id and sentence, found {list(rows[0])}")
    items = []
    for row in rows:
        video = root / "videos" / "all" / f"{row['video_id']}.mp4"
        items.append(({"caption": row["sentence"].strip()}, video if video.is_file() else None, video))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset="msrvtt",
        split="test 1K-A (JSFusion)",
        protocol="retrieval: t2v and v2t R@1/5/10, median and mean rank; one sentence per video",
        records=records,
        missing_media=missing,
    )
