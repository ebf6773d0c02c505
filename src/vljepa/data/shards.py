"""WebDataset shards: a dataset as tar files of samples, written from a manifest and read as a stream.

Layout (one sample per distinct video file; `vljepa shard MANIFEST --out DIR` writes it):
- `__key__`: the sample's index, `000000042` (the tar members are `000000042.mp4`, `000000042.json`);
- the video's bytes under its extension: `mp4`, `webm`, `png`, ... (`VIDEO_EXTENSIONS`);
- `json`: `{"records": [...]}`, every manifest record of that video with all its fields but `video`
  (caption, question/answer/options/type, label, start/end, segments, any extra key). Several records of
  one video (its caption, its questions, several time windows) share one sample, so the video is stored once.
video2dataset's output reads directly: a `json` without `records` is one record (its `caption`, or else
the `txt` member as the caption; its other keys are kept as extra fields), and the video is its `mp4`.
Reading a local shard: `read_shard` walks the tar headers itself (`tarfile` seeks past member data) and
returns each video as a byte range (`VideoBytes`) that a loader worker reads only when it decodes the
clip. A shuffle buffer then holds a few numbers per video instead of its bytes, and a resumed run re-walks
the consumed part of its stream at the cost of reading headers and JSON. Local shards are therefore
uncompressed tar files (what `ShardWriter` and video2dataset write).
Reading a streamed shard: a source starting with `pipe:`, or a URL of a scheme that webdataset's `gopen`
has a handler for (http, https, sftp, ftps, scp through curl; gs through gsutil; hf, htgs, ais), cannot
be seeked, so webdataset reads it front to back (`gopen`, `tar_file_iterator`, which also reads a
compressed tar stream) and each video's bytes are held in memory (`VideoBytes.held`). A loader's shuffle
buffer then holds up to `shuffle_buffer` videos per stream, and a resumed run reads the consumed part of
each stream again. `s3://` has no handler: read it as webdataset's users do, through a command
(`pipe:aws s3 cp s3://bucket/{00000..00099}.tar -`). A streamed source is expanded as webdataset expands
one (`expand_urls`: braces, `::` between lists) and its URLs are not opened until read. A command that
fails (`pipe:cat missing.tar`, curl on an HTTP 404) is a `ShardError` naming the URL and the exit status,
never a truncated shard read as a whole one.
A shard source (`train_manifest=`, `val_manifest=`, `--manifest`) is a `.tar` file, a folder of them, a
brace pattern (`data/{00000..00099}.tar`, expanded by `braceexpand`, which webdataset uses) or a streamed
source (`https://host/data/{00000..00099}.tar`, `pipe:curl -s https://host/data/{00000..00099}.tar`);
any other source ending in `.jsonl` is a manifest. A missing local shard or a malformed sample is a
`ShardError` naming it (a missing remote shard, once it is read).
Commands that read records by file path (eval, probe, the feature cache) get them through
`load_records`, which extracts a shard source's videos once into `<feature cache>/shard-videos/`, keyed by
the shards' paths, sizes and modification times, or by a streamed source's URLs (a remote shard changed
under the same URL is not noticed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import signal
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import webdataset as wds
from braceexpand import braceexpand
from webdataset.gopen import Pipe, gopen, gopen_schemes
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext, tar_file_iterator

from ..core.atomic import atomic_write
from ..core.progress import progress_bar
from ..errors import VljepaError
from .feature_cache import default_cache_dir
from .manifest import ClipRef, ManifestError, Record, load_manifest, parse_record
from .video_bytes import VideoBytes

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov", "m4v", "gif", "png", "jpg", "jpeg", "bmp", "webp")
RECORDS_KEY = "records"
TEXT_MEMBERS = ("json", "txt")  # a sample's members read as text, besides its video
STREAM_PATTERN = re.compile(r"pipe:|[A-Za-z][A-Za-z0-9+.-]*://")  # a source read through webdataset's gopen
STREAM_TAIL = 1 << 20  # read past a stream's end of archive (its padding is a 10 KiB record at most)
Member = tarfile.TarInfo | bytes  # a tar member: its header in a local shard, its content in a stream


class ShardError(VljepaError, ValueError):
    """A shard source that cannot be read: a missing file, a bad tar, a sample without video or with bad JSON."""


@dataclass
class VideoEntry:
    """One sample: a video and every record about it (their clips name the video by `video.name`)."""

    key: str
    video: VideoBytes
    records: list[Record]


def is_streamed(source: str | Path) -> bool:
    """A `pipe:` command or a `scheme://` URL: shards read as streams through webdataset."""
    return STREAM_PATTERN.match(str(source)) is not None


SHARD_VIDEOS_DIR = "shard-videos"  # under the feature cache folder: videos extracted from shards


def is_shard_source(source: str | Path) -> bool:
    """A `.tar` path, a brace pattern, a folder holding `.tar` files or a streamed source (not a `.jsonl`
    manifest, not a folder of videos)."""
    text = str(source)
    if is_streamed(text):
        return True
    if text.endswith(".jsonl"):
        return False
    return text.endswith(".tar") or "{" in text or (Path(text).is_dir() and any(Path(text).glob("*.tar")))


def _stream_urls(source: str) -> list[str]:
    """The URLs of a streamed source, expanded as webdataset expands them; each must have a gopen handler."""
    urls = expand_urls(source)
    for url in urls:
        scheme = "pipe" if url.startswith("pipe:") else url.split("://", 1)[0].lower()
        if is_streamed(url) and scheme not in gopen_schemes:
            handled = ", ".join(sorted(k for k in gopen_schemes if k != "__default__"))
            raise ShardError(
                f"{url}: webdataset opens no {scheme}:// URLs (only {handled}); give a local path or read it "
                f"through a command, e.g. pipe:aws s3 cp URL -"
            )
    return urls


def shard_list(source: str | Path) -> list[Path | str]:
    """The shards of a source, in order: local files (each must exist) or the URLs of a streamed source
    (opened only when read)."""
    text = str(source)
    if is_streamed(text):
        return _stream_urls(text)
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


def _records(shard: str, key: str, video: VideoBytes, meta: dict | None, caption: str | None) -> list[Record]:
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
        try:  # the clip's path is set to the video's name below
            record = parse_record({**item, "video": video.name}, Path(shard), f"{where} record {number}")
        except ManifestError as error:
            raise ShardError(str(error)) from error
        records.append(replace(record, clip=ClipRef(video.name, record.clip.start, record.clip.end)))
    return records


def _video_member(shard: str, key: str, members: dict[str, tuple[str, Member]]) -> tuple[str, str, Member]:
    """(extension, member name, member) of a sample's video."""
    ext = next((e for e in members if e.lower() in VIDEO_EXTENSIONS), None)
    if ext is None:
        raise ShardError(
            f"{shard}: sample {key} has no video (one of {', '.join(VIDEO_EXTENSIONS)}); "
            f"its members: {', '.join(sorted(members))}"
        )
    return (ext, *members[ext])


def _entry(shard: str, key: str, video: VideoBytes, meta_json: bytes | None, txt: bytes | None) -> VideoEntry:
    """A sample from its video and the contents of its `json` and `txt` members."""

    def text(content: bytes | None) -> str | None:
        return content.decode("utf-8").strip() if content is not None else None

    try:
        meta = json.loads(text(meta_json)) if meta_json is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShardError(f"{shard}: sample {key}: its json is not valid UTF-8 JSON ({error})") from error
    if meta is not None and not isinstance(meta, dict):
        raise ShardError(f"{shard}: sample {key}: its json must be an object")
    return VideoEntry(key, video, _records(shard, key, video, meta, text(txt) or None))


def _grouped(files: Iterator[tuple[str, Member]]) -> Iterator[tuple[str, dict[str, tuple[str, Member]]]]:
    """Consecutive tar members (name, member) grouped into samples: (key, {extension: (name, member)})."""
    key, members = None, {}
    for name, member in files:
        base, ext = base_plus_ext(name)
        if base is None:
            continue
        if base != key and members:
            yield key, members
            members = {}
        key, members[ext] = base, (name, member)
    if members:
        yield key, members


def _read_local(shard: Path) -> Iterator[VideoEntry]:
    """A local tar shard: headers and JSON only, each video a byte range of the file."""
    where = str(shard)
    try:
        with tarfile.open(shard, "r:") as tar:
            for key, members in _grouped((m.name, m) for m in tar if m.isfile()):
                ext, name, member = _video_member(where, key, members)
                video = VideoBytes(where, member.offset_data, member.size, ext, f"{where}/{name}")
                texts = (tar.extractfile(members[e][1]).read() if e in members else None for e in TEXT_MEMBERS)
                yield _entry(where, key, video, *texts)
    except (tarfile.TarError, OSError) as error:
        raise ShardError(f"{shard}: not a readable uncompressed tar shard ({error})") from error


def _close_stream(url: str, stream: Pipe) -> None:
    """Close a shard's stream; a command that failed (webdataset's `Pipe` raises its exit status on close) is a
    `ShardError` naming the URL. A command killed by SIGPIPE was only stopped early by the reader."""
    try:
        stream.close()
    except OSError as error:
        if stream.status != -signal.SIGPIPE:
            command = stream.args[0][0]  # a pipe:'s shell command, or the argument list of curl, gsutil, ...
            program = command[0] if isinstance(command, list) else command
            raise ShardError(
                f"{url}: reading the shard failed ({program} exited with status {stream.status})"
            ) from error


def _read_stream(url: str) -> Iterator[VideoEntry]:
    """A streamed shard, read once front to back by webdataset (`gopen`, `tar_file_iterator`); each video's
    bytes are held in memory."""
    try:
        stream = gopen(url, "rb")
    except (OSError, ValueError) as error:
        raise ShardError(f"{url}: cannot open ({error})") from error
    try:
        files = ((item["fname"], item["data"]) for item in tar_file_iterator(stream))
        for key, members in _grouped(files):
            ext, name, data = _video_member(url, key, members)
            video = VideoBytes.held(url, data, ext, f"{url}/{name}")
            yield _entry(url, key, video, *(members[e][1] if e in members else None for e in TEXT_MEMBERS))
        stream.read(STREAM_TAIL)  # the tar's end padding, so that the command can finish writing
    except (tarfile.TarError, OSError) as error:
        _close_stream(url, stream)  # a failed command is the cause to report
        raise ShardError(f"{url}: not a readable tar stream ({error})") from error
    except BaseException:  # a malformed sample, or a reader that stops early: the command's status is moot
        with contextlib.suppress(OSError):
            stream.close()
        raise
    _close_stream(url, stream)


def read_shard(shard: Path | str) -> Iterator[VideoEntry]:
    """The samples of one tar shard, in order: a local file (reading headers and JSON only, videos stay byte
    ranges) or a streamed URL (videos held in memory)."""
    return _read_stream(str(shard)) if is_streamed(shard) else _read_local(Path(shard))


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
    for shard in shard_list(source):
        yield from read_shard(shard)


def _identity(shard: Path | str) -> str | list:
    """What names a shard's content in `extracted_records`' digest: a URL itself; a file's path, size and
    modification time."""
    if isinstance(shard, str):
        return shard
    return [str(shard.resolve()), shard.stat().st_size, shard.stat().st_mtime_ns]


def load_records(source: str | Path) -> list[Record]:
    """The records of a JSONL manifest (`load_manifest`) or of a shard source; a shard source's videos are
    extracted once to files under the feature cache's folder (`<cache>/shard-videos/`, see `extracted_records`),
    for code that reads videos by path."""
    if is_shard_source(source):
        return extracted_records(source, default_cache_dir() / SHARD_VIDEOS_DIR)
    return load_manifest(source)


def extracted_records(source: str | Path, root: Path) -> list[Record]:
    """The records of a shard source with each video extracted once to a file under `root/<digest>/` (the
    digest covers local shards' paths, sizes and modification times, or a streamed source's URLs: a remote
    shard changed under the same URL is not noticed), for code that reads videos by path. A streamed source
    is read in full every time (its records are in the stream); only videos already extracted are not
    written again."""
    shards = shard_list(source)
    digest = hashlib.sha256(json.dumps([_identity(s) for s in shards]).encode()).hexdigest()[:16]
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
