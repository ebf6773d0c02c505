"""ActivityNet Captions (Krishna et al. 2017), val_1 split: paragraph-to-video retrieval.

Files expected under `--root` (the public `captions.zip` and the ActivityNet videos):
  val_1.json     {video id: {"duration", "timestamps": [[start, end], ...], "sentences": [...]}, ...}
  videos/<video id>.mp4   (ids keep their `v_` prefix; .mkv/.webm accepted, and the id without `v_`)
Manifest: one record per video, `{"video": <file>, "caption": <its sentences joined by spaces>}`: the
standard paragraph-to-video protocol (the whole video against the paragraph of all its events).
Protocol: t2v and v2t R@1/5/10, median and mean rank over the split's videos.
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    VIDEO_SUFFIXES,
    BenchmarkDataError,
    Imported,
    field_of,
    find_file,
    first_existing,
    read_json,
    resolve_media,
)


def paragraph(sentences: list[str]) -> str:
    return " ".join(s.strip() for s in sentences if s.strip())


def load(root: Path, allow_missing: bool = False) -> Imported:
    path = find_file(root, "val_1.json")
    videos = read_json(path)
    if not isinstance(videos, dict):
        raise BenchmarkDataError(f"{path}: expected an object {{video id: annotations}}")
    items = []
    for video_id, entry in videos.items():
        text = paragraph(field_of(entry, "sentences", f"{path}: video {video_id}"))
        names = dict.fromkeys([video_id, video_id.removeprefix("v_")])
        candidates = [root / "videos" / (name + suffix) for name in names for suffix in VIDEO_SUFFIXES]
        items.append(({"caption": text}, first_existing(candidates), candidates[0]))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset="activitynet",
        split="val_1",
        protocol="retrieval, paragraph-to-video: t2v and v2t R@1/5/10, median and mean rank",
        records=records,
        missing_media=missing,
    )
