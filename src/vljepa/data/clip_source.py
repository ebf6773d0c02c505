"""Where the clips of a video library come from: the one place a `--videos` argument is resolved.

A clip source is a stream of decoded clips, `(ClipRef, frames (T, H, W, 3) uint8)` or `(ClipRef, error)`
for a clip that cannot be decoded (reported and skipped by the consumer, as in the feature cache),
plus the number of clips when it is known in advance (for the progress bar). Clips already indexed can
be left out before anything is decoded (`indexed`), so growing an index reads only the new videos.
- A JSONL manifest: its distinct clips (`video` + `start`/`end`), in order of first appearance.
- A folder: every video or image file under it (recursively, sorted), each whole; or, with a window
  length and stride, each video cut into the sliding windows of `sliding_windows`, decoded once per
  file with `iter_windows` (a long video is not re-decoded for each window and never held whole in
  memory; its window count is known only once it is decoded). An image is one clip either way.
Paths are resolved (`..`, symlinks), as the manifest reader does, so that one file has one name.
Explicit clips are decoded on one thread per CPU, a batch at a time, in their order.
- WebDataset shards (`shards.py`: a `.tar`, a brace pattern, a folder of `.tar` files): their records' clips,
  as a manifest's, with the videos extracted once by `load_manifest`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch

from ..errors import VljepaError
from .manifest import ClipRef
from .shards import is_shard_source, load_records
from .video import IMAGE_SUFFIXES, VideoError, iter_windows, read_clip

VIDEO_SUFFIXES = {".mp4", ".webm", ".avi", ".mkv", ".mov", ".gif"}
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
MANIFEST_SUFFIXES = {".jsonl"}

DecodedClip = tuple[ClipRef, "torch.Tensor | Exception"]


class ClipSourceError(VljepaError, ValueError):
    """A `--videos` argument that names no clips: a missing path, an empty folder, an unknown file type."""


@dataclass
class ClipSource:
    """Decoded clips in order; `total` is their number when known before decoding (else None)."""

    clips: Iterator[DecodedClip]
    total: int | None


def media_files(folder: str | Path) -> list[Path]:
    """Every video or image file under `folder` (recursively), sorted; resolved paths."""
    return sorted(p.resolve() for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)


def _read(clip: ClipRef, num_frames: int) -> torch.Tensor | Exception:
    try:
        return read_clip(clip.path, num_frames, clip.start, clip.end)
    except (VideoError, OSError) as error:
        return error


def read_clips(clips: Iterable[ClipRef], num_frames: int, batch_size: int = 32) -> Iterator[DecodedClip]:
    """Each clip with its `num_frames` sampled frames or the error that stopped its decoding, in order;
    `batch_size` clips are decoded at a time on one thread per CPU."""
    clips = iter(clips)
    with ThreadPoolExecutor(os.cpu_count() or 1) as readers:
        while batch := list(islice(clips, batch_size)):
            yield from zip(batch, readers.map(lambda clip: _read(clip, num_frames), batch))


def read_windows(files: Iterable[Path], length: float, stride: float, num_frames: int) -> Iterator[DecodedClip]:
    """The sliding windows of each video (`iter_windows`, one decode per file), an image as one clip; a file
    that fails yields one `(ClipRef(path), error)` after any windows decoded before the failure."""
    for path in files:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            yield ClipRef(str(path)), _read(ClipRef(str(path)), num_frames)
            continue
        try:
            for (start, end), frames in iter_windows(path, length, stride, num_frames):
                yield ClipRef(str(path), start, end), frames
        except (VideoError, OSError) as error:
            yield ClipRef(str(path)), error


def resolve_clip_source(
    videos: str | Path,
    num_frames: int,
    window: float | None = None,
    stride: float | None = None,
    indexed: Collection[ClipRef] = (),
) -> ClipSource:
    """The clips named by `videos` (a folder or a JSONL manifest), decoded lazily as the source is consumed.
    `window`/`stride` (seconds) cut a folder's videos into sliding windows (stride defaults to the window).
    Clips in `indexed` are left out before any decoding; with windows, so is every file with a clip in it."""
    source, videos = str(videos), Path(videos)  # the string keeps a streamed shard source's URL whole
    if window is not None and window <= 0 or stride is not None and stride <= 0:
        raise ClipSourceError(f"window ({window}) and stride ({stride}) must be positive numbers of seconds")
    if is_shard_source(source) or videos.is_file():
        if videos.suffix.lower() not in MANIFEST_SUFFIXES and not is_shard_source(source):
            raise ClipSourceError(f"{videos}: not a folder of videos, a JSONL manifest (*.jsonl) or shards (*.tar)")
        if window is not None:
            raise ClipSourceError(f"{source}: a manifest names its clips' windows itself; --window is for folders")
        clips = [clip for clip in dict.fromkeys(r.clip for r in load_records(source)) if clip not in indexed]
        return ClipSource(read_clips(clips, num_frames), len(clips))
    if not videos.is_dir():
        raise ClipSourceError(f"{videos}: no such folder or manifest")
    files = media_files(videos)
    if not files:
        raise ClipSourceError(f"{videos}: no video or image files")
    if window is None:
        clips = [clip for clip in (ClipRef(str(path)) for path in files) if clip not in indexed]
        return ClipSource(read_clips(clips, num_frames), len(clips))
    indexed_files = {clip.path for clip in indexed}
    files = [path for path in files if str(path) not in indexed_files]
    return ClipSource(read_windows(files, window, stride or window, num_frames), None if files else 0)
