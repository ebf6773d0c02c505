"""MSVD (Chen & Dolan 2011), test split: text <-> video retrieval, about 40 captions per video.

Layout (our choice among several in circulation: the official caption file with the test list and clip
folder of the widely used CLIP4Clip release; the `raw-captions.pkl` variant is not read, a pickle being
code rather than data):
  AllVideoDescriptions.txt   the official Microsoft release: `#` comment lines, then one
                             `<video id> <caption>` per line (`-4wsuPCjDBc_5_15 a squirrel is eating`),
                             every language's captions being English in this file
  test_list.txt              one video id per line: the standard 670-video test split
  YouTubeClips/<video id>.avi
Manifest: one record per caption of a test video, `{"video": YouTubeClips/<id>.avi, "caption"}`.
Protocol: t2v with the caption's own video the only hit; v2t with any of the video's captions a hit.
"""

from __future__ import annotations

from pathlib import Path

from .common import BenchmarkDataError, Imported, find_file, resolve_media


def read_descriptions(path: Path) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        video, _, caption = line.strip().partition(" ")
        if not caption.strip():
            raise BenchmarkDataError(f"{path}:{number}: expected `<video id> <caption>`, got {line[:60]!r}")
        captions.setdefault(video, []).append(caption.strip())
    return captions


def load(root: Path, allow_missing: bool = False) -> Imported:
    descriptions = read_descriptions(find_file(root, "AllVideoDescriptions.txt"))
    test_list = find_file(root, "test_list.txt")
    items = []
    for video in (line.strip() for line in test_list.read_text().splitlines() if line.strip()):
        if video not in descriptions:
            raise BenchmarkDataError(f"{test_list}: video {video!r} has no caption in AllVideoDescriptions.txt")
        clip = root / "YouTubeClips" / f"{video}.avi"
        items += [({"caption": caption}, clip if clip.is_file() else None, clip) for caption in descriptions[video]]
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset="msvd",
        split="test (670 videos)",
        protocol="retrieval: t2v and v2t R@1/5/10, median and mean rank; every caption of a video a v2t hit",
        records=records,
        missing_media=missing,
    )
