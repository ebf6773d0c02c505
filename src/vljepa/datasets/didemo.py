"""DiDeMo (Hendricks et al. 2017), test split: paragraph-to-video retrieval.

Files expected under `--root` (the public LocalizingMoments annotations and videos):
  test_data.json   [{"video": "<flickr name>.mov", "description", "times": [[start, end], ...], ...}, ...]
  videos/<video>   the video as named (or with .mp4 appended, or its extension replaced by .mp4: the
                   common transcoded copies)
Manifest: one record per video, `{"video": <file>, "caption": <its descriptions joined by spaces, in the
file's order>}`: the standard paragraph-to-video protocol (moment times are not used).
Protocol: t2v and v2t R@1/5/10, median and mean rank over the split's videos.
"""

from __future__ import annotations

from pathlib import Path

from .common import BenchmarkDataError, Imported, field_of, find_file, first_existing, read_json, resolve_media


def load(root: Path, allow_missing: bool = False) -> Imported:
    path = find_file(root, "test_data.json")
    entries = read_json(path)
    if not isinstance(entries, list):
        raise BenchmarkDataError(f"{path}: expected a list of annotations")
    descriptions: dict[str, list[str]] = {}
    for number, entry in enumerate(entries):
        where = f"{path}: entry {number}"
        description = field_of(entry, "description", where).strip()
        descriptions.setdefault(field_of(entry, "video", where), []).append(description)
    items = []
    for video, texts in descriptions.items():
        folder = root / "videos"
        candidates = [folder / video, folder / f"{video}.mp4", folder / f"{Path(video).stem}.mp4"]
        items.append(({"caption": " ".join(t for t in texts if t)}, first_existing(candidates), candidates[0]))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset="didemo",
        split="test",
        protocol="retrieval, paragraph-to-video: t2v and v2t R@1/5/10, median and mean rank",
        records=records,
        missing_media=missing,
    )
