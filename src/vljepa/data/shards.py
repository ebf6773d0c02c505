"""WebDataset shards: a dataset as tar files of samples, written from a manifest and read as a stream.

Layout (one sample per distinct video file; `vljepa shard MANIFEST --out DIR` writes it):
- `__key__`: the sample's index, `000000042` (the tar members are `000000042.mp4`, `000000042.json`);
- the video's bytes under its extension: `mp4`, `webm`, `png`, ... (`VIDEO_EXTENSIONS`);
- `json`: `{"records": [...]}`, every manifest record of that video with all its fields but `video`
  (caption, question/answer/options/type, label, start/end, segments, any extra key). Several records of
  one video (its caption, its questions, several time windows) share one sample, so the video is stored once.
video2dataset's output reads directly: a `json` without `records` is one record (its `caption`, or else
the `txt` member as the caption; its other keys are kept as extra fields), and the video is its `mp4`.
Our choice over webdataset's decoders: `read_shard` walks the tar headers itself (`tarfile` seeks past
member data) and returns each video as a byte range (`VideoBytes`) that a loader worker reads only when
it decodes the clip. A shuffle buffer then holds a few numbers per video instead of its bytes, and a
resumed run re-walks the consumed part of its stream at the cost of reading headers and JSON. Shards are
therefore local, uncompressed tar files (what `ShardWriter` and video2dataset write); a `pipe:` or http
URL is not read.
A shard source (`train_manifest=`, `val_manifest=`, `--manifest`) is a `.tar` file, a folder of them or
a brace pattern (`data/{00000..00099}.tar`, expanded by `braceexpand`, which webdataset uses); anything
ending in `.jsonl` is a manifest. A missing shard or a malformed sample is a `ShardError` naming it.
Commands that read records by file path (eval, probe, the feature cache) get them through
`load_manifest`, which extracts a shard source's videos once into `<feature cache>/shard-videos/`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import webdataset as wds
from braceexpand import braceexpand
from webdataset.tariterators import base_plus_ext

from ..atomic import atomic_write
from ..errors import VljepaError
from ..progress import progress_bar
from .manifest import ClipRef, ManifestError, Record, load_manifest, parse_record
from .video_bytes import VideoBytes

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov", "m4v", "gif", "png", "jpg", "jpeg", "bmp", "webp")
RECORDS_KEY = "records"
SIZE_UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


class ShardError(VljepaError, ValueError):
    """A shard source that cannot be read: a missing file, a bad tar, a sample without video or with bad JSON."""


@dataclass
class VideoEntry:
    """One sample: a video and every record about it (their clips name the video by `video.name`)."""

    key: str
    video: VideoBytes
    records: list[Record]


def parse_size(text: str) -> int:
    """`1GB`, `500MB`, `2.5GB`, `64MiB` or a number of bytes -> bytes (KB/MB/GB are powers of 1000)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in SIZE_UNITS or float(match.group(1)) <= 0:
        raise ShardError(f"--max-size: expected a size such as 1GB or 500MB, got {text!r}")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])


def is_shard_source(source: str | Path) -> bool:
    """A `.tar` path, a brace pattern or a folder holding `.tar` files (not a `.jsonl` manifest, not a folder of
    videos)."""
    text = str(source)
    if text.endswith(".jsonl"):
        return False
    return text.endswith(".tar") or "{" in text or (Path(text).is_dir() and any(Path(text).glob("*.tar")))


def shard_paths(source: str | Path) -> list[Path]:
    """The shard files of a source, in order; each must exist."""
    text = str(source)
    if Path(text).is_dir():
        paths = sorted(Path(text).glob("*.tar"))
        if not paths:
            raise ShardError(f"{text}: no .tar shards in this folder")
        return paths
    paths = [Path(p) for p in braceexpand(text)]
    for path in paths:
        if not path.is_file():
            raise ShardError(f"{path}: shard not found" + (f" (from {text})" if len(paths) > 1 else ""))
    return paths


def _records(shard: Path, key: str, video: VideoBytes, meta: dict | None, caption: str | None) -> list[Record]:
    """The records of a sample: our `{"records": [...]}`, or video2dataset's single record (+ `txt` caption)."""
    where = f"{shard}: sample {key}"
    if meta is not None and RECORDS_KEY in meta:
        items = meta[RECORDS_KEY]
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ShardError(f'{where}: json "{RECORDS_KEY}" must be a list of objects')
    else:
        item = dict(meta or {})
        if not (isinstance(item.get("caption"), str) and item["caption"].strip()):
            item["caption"] = caption
        items = [item]
    records = []
    for number, item in enumerate(items):
        try:
            record = parse_record({**item, "video": video.name}, shard, f"{where} record {number}")
        except ManifestError as error:
            raise ShardError(str(error)) from error
        records.append(replace(record, clip=ClipRef(video.name, record.clip.start, record.clip.end)))
    return records


def _entry(shard: Path, tar: tarfile.TarFile, key: str, members: dict[str, tarfile.TarInfo]) -> VideoEntry:
    ext = next((e for e in members if e.lower() in VIDEO_EXTENSIONS), None)
    if ext is None:
        raise ShardError(
            f"{shard}: sample {key} has no video (one of {', '.join(VIDEO_EXTENSIONS)}); "
            f"its members: {', '.join(sorted(members))}"
        )
    member = members[ext]
    video = VideoBytes(str(shard), member.offset_data, member.size, ext, f"{shard}/{member.name}")

    def text(name: str) -> str | None:
        return tar.extractfile(members[name]).read().decode("utf-8").strip() if name in members else None

    try:
        meta = json.loads(text("json")) if "json" in members else None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShardError(f"{shard}: sample {key}: its json is not valid UTF-8 JSON ({error})") from error
    if meta is not None and not isinstance(meta, dict):
        raise ShardError(f"{shard}: sample {key}: its json must be an object")
    return VideoEntry(key, video, _records(shard, key, video, meta, text("txt") or None))


def read_shard(shard: Path) -> Iterator[VideoEntry]:
    """The samples of one tar shard, in order, reading headers and JSON only (videos stay byte ranges)."""
    try:
        with tarfile.open(shard, "r:") as tar:
            key, members = None, {}
            for member in tar:
                base, ext = base_plus_ext(member.name) if member.isfile() else (None, None)
                if base is None:
                    continue
                if base != key and members:
                    yield _entry(shard, tar, key, members)
                    members = {}
                key, members[ext] = base, member
            if members:
                yield _entry(shard, tar, key, members)
    except (tarfile.TarError, OSError) as error:
        raise ShardError(f"{shard}: not a readable uncompressed tar shard ({error})") from error


def manifest_entries(manifest: str | Path) -> list[VideoEntry]:
    """A JSONL manifest as the same samples: its records grouped by video file, in order of first appearance."""
    by_video: dict[str, list[Record]] = {}
    for record in load_manifest(manifest):
        by_video.setdefault(record.clip.path, []).append(record)
    return [
        VideoEntry(f"{index:09d}", VideoBytes(path, 0, -1, Path(path).suffix.lstrip("."), path), records)
        for index, (path, records) in enumerate(by_video.items())
    ]


def record_fields(record: Record) -> dict:
    """A record as its manifest line, without `video`."""
    fields = {
        name: getattr(record, name)
        for name in ("caption", "question", "answer", "options", "type", "label", "segments")
        if getattr(record, name) is not None
    }
    window = {"start": record.clip.start, "end": record.clip.end}
    return {**fields, **{k: v for k, v in window.items() if v is not None}, **record.extra}


def write_shards(manifest: str | Path, out_dir: str | Path, max_size: int, progress: bool = True) -> list[Path]:
    """Write `out_dir/00000.tar, ...` (each closed once it reaches `max_size` bytes): one sample per distinct
    video of the manifest. Returns the shard paths."""
    entries = manifest_entries(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pattern = str(out_dir / "%05d.tar")
    # mtime 0: the same manifest gives byte-identical shards
    with (
        wds.ShardWriter(pattern, maxsize=max_size, verbose=0, mtime=0, post=lambda f: written.append(Path(f))) as sink,
        progress_bar(f"writing shards of {len(entries)} videos", len(entries), progress) as advance,
    ):
        for entry in entries:
            try:
                data = entry.video.read()
            except OSError as error:
                raise ShardError(f"{entry.video.name}: cannot read ({error.strerror})") from error
            meta = {RECORDS_KEY: [record_fields(r) for r in entry.records]}
            sink.write({"__key__": entry.key, entry.video.ext.lower() or "bin": data, "json": json.dumps(meta)})
            advance(1)
    return written


def source_entries(source: str | Path) -> Iterator[VideoEntry]:
    """Every sample of a shard source or a manifest, in order."""
    if not is_shard_source(source):
        yield from manifest_entries(source)
        return
    for shard in shard_paths(source):
        yield from read_shard(shard)


def extracted_records(source: str | Path, root: Path) -> list[Record]:
    """The records of a shard source with each video extracted once to a file under `root/<digest>/` (the
    digest covers the shards' paths, sizes and modification times), for code that reads videos by path."""
    shards = shard_paths(source)
    digest = hashlib.sha256(
        json.dumps([[str(s.resolve()), s.stat().st_size, s.stat().st_mtime_ns] for s in shards]).encode()
    ).hexdigest()[:16]
    records = []
    for index, shard in enumerate(shards):
        for entry in read_shard(shard):
            path = root / digest / f"{index:05d}" / f"{entry.key}.{entry.video.ext}"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, lambda tmp, video=entry.video: tmp.write_bytes(video.read()))
            records += [replace(r, clip=ClipRef(str(path), r.clip.start, r.clip.end)) for r in entry.records]
    if not records:
        raise ShardError(f"{source}: no records")
    return records
