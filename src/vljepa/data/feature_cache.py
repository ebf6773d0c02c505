"""Frozen-feature cache: X-encoder tokens computed once per clip, reused across epochs and stages.

The encoder is frozen, so its tokens for a clip never change while its weights and the preprocessing
stay the same. The cache lives in `<dir>/<fingerprint>/`, where the fingerprint hashes the encoder's
weights, the preprocessing, the frame view and the cache's format version (`FORMAT`); change any and a
fresh folder is used (a cache written in an older format is left where it is, unread). A clip is keyed
by its resolved path, file size and mtime and time window. A clip that cannot be decoded is reported,
not cached, and not fatal: callers skip its records.

Its size is bounded by the disk, not by memory (the paper's tokens are 8 MB per 32-frame clip):
- Shards are raw `.npy` arrays (rows, N, D) float16 opened with `np.load(mmap_mode="r")`, so reading a
  row touches only that row's pages. Ours, not safetensors: numpy's `mmap_mode` is documented API, while
  whether a safetensors tensor is a view of a map or a copy of the file is an implementation detail of
  its Rust binding (the installed 0.8 does map: one row of a 262 MB shard read through `safe_open` added
  1.8 MB to the peak RSS). At most `ShardReader.max_open` shards are mapped at once (each map holds a
  file descriptor); the least recently read is closed first.
- Each shard has its own index, `shard_<uuid>.keys.json` (the clip key of each row), written atomically
  after its shard, so an index that exists always points at a complete shard. There is no shared file
  to rewrite: readers list the `*.keys.json` files (lock-free) and read only the ones they have not
  seen; writers in any number of processes or ranks each write their own uniquely named shards. Under
  torchrun every rank encodes its share of the missing clips (`missing(clips)[rank::size]`: the list is
  sorted by key, so the shares are disjoint), then reads everyone's shards once all have finished. A
  writer flushes a shard every `shard_bytes` of tokens, so encoding a large dataset holds one shard's
  tokens at a time and an interrupted run keeps what it flushed.
- Two writers may both encode a clip that neither had cached: both rows hold that clip's tokens, and
  a reader uses the one in the shard whose index it read first (the other is wasted disk).
- The in-memory index maps each cached clip's key to (shard, row): a few hundred bytes a clip, not its
  tokens. `locate` returns where clips are; `tokens` reads them (for the sets that fit in memory).
The cache depends on the encoder only through `ClipEncoder`, so the data layer does not import the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch

from ..config import XEncoderConfig
from ..core.atomic import atomic_write
from ..core.progress import progress_bar
from ..errors import OutputError
from .manifest import ClipRef
from .video import VideoError, read_clip


class ClipEncoder(Protocol):
    """What the cache needs of a frozen encoder (`vljepa.model.x_encoder.XEncoder` is one)."""

    config: XEncoderConfig

    @property
    def device(self) -> torch.device: ...

    def fingerprint(self) -> str: ...

    def preprocessing_signature(self) -> dict: ...

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, video: torch.Tensor) -> torch.Tensor: ...


# What each view feeds the encoder, as its fingerprint names it: a view whose frames change gets a new name
# here, so that no cache written before serves it. `single_frame` is a no-motion control: the frame at the
# middle of the clip's window (where the built-in world centres its laws), repeated to the encoder's frame
# count. It is read on its own, not picked from the sampled frames, whose middle one lies off the clip's
# centre for an even count (with 4 of 16 frames, a sixth of the clip after it, which shows where a moving
# shape is heading).
VIEWS = {"clip": "clip", "single_frame": "single_frame: the window's middle frame"}


def read_view(clip: ClipRef, num_frames: int, view: str) -> torch.Tensor:
    """The (num_frames, H, W, 3) frames a view of `clip` feeds the encoder."""
    if view == "single_frame":
        middle = read_clip(clip.path, 1, clip.start, clip.end)
        return middle.expand(num_frames, *middle.shape[1:]).clone()
    return read_clip(clip.path, num_frames, clip.start, clip.end)


def default_cache_dir() -> Path:
    """$VLJEPA_CACHE_DIR, else $XDG_CACHE_HOME/vljepa/features, else ~/.cache/vljepa/features."""
    if os.environ.get("VLJEPA_CACHE_DIR"):
        return Path(os.environ["VLJEPA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vljepa" / "features"


def clip_key(clip: ClipRef) -> str:
    stat = os.stat(clip.path)
    return f"{clip.path}|{clip.start}|{clip.end}|{stat.st_size}|{stat.st_mtime_ns}"


FORMAT = 2  # per-shard indexes and memory-mapped .npy shards (1: one index.json and safetensors shards)
KEYS_SUFFIX = ".keys.json"


class Location(NamedTuple):
    """Where a clip's tokens are: a row of a shard."""

    shard: str  # the shard's file name, `shard_<uuid>.npy`
    row: int


class ShardReader:
    """Reads rows of a cache folder's shards through memory maps, at most `max_open` open at once.
    Picklable (a data-loading worker reopens the maps it needs)."""

    def __init__(self, directory: Path, max_open: int = 64):
        self.directory, self.max_open = directory, max_open
        self._open: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": OrderedDict()}

    def _shard(self, name: str) -> np.ndarray:
        if name in self._open:
            self._open.move_to_end(name)
        else:
            self._open[name] = np.load(self.directory / name, mmap_mode="r")
            if len(self._open) > self.max_open:
                self._open.popitem(last=False)
        return self._open[name]

    def rows(self, locations: list[Location]) -> torch.Tensor:
        """The rows' tokens (len(locations), N, D) float16, copied out of the maps."""
        return torch.from_numpy(np.stack([self._shard(shard)[row] for shard, row in locations]))


class FeatureCache:
    def __init__(
        self,
        directory: str | Path,
        x_encoder: ClipEncoder,
        view: str = "clip",
        batch_size: int = 64,
        shard_bytes: int = 256 * 2**20,
    ):
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose from {sorted(VIEWS)}")
        self.x_encoder, self.view, self.batch_size, self.shard_bytes = x_encoder, view, batch_size, shard_bytes
        signature = json.dumps(
            {
                "encoder": x_encoder.fingerprint(),
                "pre": x_encoder.preprocessing_signature(),
                "view": VIEWS[view],
                "format": FORMAT,
            },
            sort_keys=True,
        )
        self.directory = Path(directory) / hashlib.sha256(signature.encode()).hexdigest()[:16]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # an existing cache may be read-only; a new one must be made
            raise OutputError(f"{directory}: cannot write here ({error.strerror or error})") from error
        self.reader = ShardReader(self.directory)
        self.index: dict[str, Location] = {}
        self._indexed: set[str] = set()  # the shards whose keys are in `self.index`
        self.failed: dict[str, str] = {}  # clip path -> error message, for this session
        self.refresh()

    def refresh(self) -> None:
        """Add the shards other writers have completed since the last look (their index files)."""
        for keys_file in sorted(self.directory.glob(f"shard_*{KEYS_SUFFIX}")):
            shard = keys_file.name.removesuffix(KEYS_SUFFIX) + ".npy"
            if shard not in self._indexed:
                self._index_shard(shard, json.loads(keys_file.read_text()))

    def _index_shard(self, shard: str, keys: list[str]) -> None:
        for row, key in enumerate(keys):
            self.index.setdefault(key, Location(shard, row))
        self._indexed.add(shard)

    def _add_shard(self, keys: list[str], tokens: torch.Tensor) -> None:
        """Write a uniquely named shard, then its index (both atomically): its rows are then visible to all."""
        name = f"shard_{uuid.uuid4().hex}"
        array = tokens.numpy()

        def save(tmp: Path) -> None:
            with tmp.open("wb") as handle:
                np.save(handle, array)

        atomic_write(self.directory / f"{name}.npy", save)
        atomic_write(self.directory / f"{name}{KEYS_SUFFIX}", lambda tmp: tmp.write_text(json.dumps(keys)))
        self._index_shard(f"{name}.npy", keys)

    def _read_frames(self, clip: ClipRef) -> torch.Tensor | Exception:
        """The clip's sampled frames in the cache's view, or the error that stopped the decoding."""
        try:
            return read_view(clip, self.x_encoder.config.num_frames, self.view)
        except (VideoError, OSError) as error:
            return error

    def encode(self, clips: list[ClipRef], progress: bool = True) -> None:
        """Encode these clips into new shards; failures are in `self.failed`. Each batch's clips are decoded
        on one thread per CPU, then preprocessed and encoded; a shard is written whenever `shard_bytes` of
        tokens are ready, and at the end. Decoding is kept apart from the torch work: interleaved with it,
        encoding the demo's clips took twice as long."""
        if not clips:
            return
        keys: list[str] = []
        rows: list[torch.Tensor] = []
        device = self.x_encoder.device
        with (
            progress_bar(f"encoding {len(clips)} clips ({self.view})", len(clips), enabled=progress) as advance,
            ThreadPoolExecutor(os.cpu_count() or 1) as readers,
        ):
            for start in range(0, len(clips), self.batch_size):
                batch = clips[start : start + self.batch_size]
                batch_keys, videos = [], []
                for clip, frames in zip(batch, list(readers.map(self._read_frames, batch))):
                    if isinstance(frames, Exception):
                        self.failed[clip.path] = str(frames)
                        continue
                    batch_keys.append(clip_key(clip))
                    videos.append(self.x_encoder.preprocess(frames))
                if videos:
                    rows.append(self.x_encoder(torch.stack(videos).to(device)).to(torch.float16).cpu())
                    keys.extend(batch_keys)
                if keys and (sum(r.nbytes for r in rows) >= self.shard_bytes or start + len(batch) >= len(clips)):
                    self._add_shard(keys, torch.cat(rows))
                    keys, rows = [], []
                advance(len(batch))

    def _keys(self, clips: list[ClipRef]) -> dict[ClipRef, str]:
        """Each distinct clip's cache key; a clip whose file is missing is failed."""
        keys: dict[ClipRef, str] = {}
        for clip in dict.fromkeys(clips):
            try:
                keys[clip] = clip_key(clip)
            except OSError:
                self.failed[clip.path] = f"{clip.path}: file not found"
        return keys

    def _missing(self, keys: dict[ClipRef, str]) -> list[ClipRef]:
        """The clips not in the cache, sorted by key, looking first for shards other writers have completed."""
        if any(key not in self.index for key in keys.values()):
            self.refresh()
        return sorted((clip for clip, key in keys.items() if key not in self.index), key=keys.__getitem__)

    def missing(self, clips: list[ClipRef]) -> list[ClipRef]:
        """The distinct clips not in the cache, in the order of their keys: writers that list the same clips
        of the same cache get the same list, and `missing[rank::size]` splits it into disjoint shares."""
        return self._missing(self._keys(clips))

    def locate(
        self, clips: list[ClipRef], progress: bool = True, encode_missing: bool = True
    ) -> dict[ClipRef, Location]:
        """Where the tokens of every clip that decodes are (encoding the missing ones first); failures are in
        `self.failed`. With `encode_missing=False` a clip not in the cache counts as failed (another process
        fills the cache), with the error already in `self.failed` if there is one."""
        keys = self._keys(clips)
        if encode_missing:
            self.encode(self._missing(keys), progress)
        missing = [clip for clip in self._missing(keys) if clip.path not in self.failed]
        self.failed.update(
            {c.path: f"{c.path}: not in the feature cache {self.directory} (read-only here)" for c in missing}
        )
        return {clip: self.index[key] for clip, key in keys.items() if key in self.index}

    def tokens(
        self, clips: list[ClipRef], progress: bool = True, encode_missing: bool = True
    ) -> dict[ClipRef, torch.Tensor]:
        """Tokens (N, D) float16 for every clip that decodes, read into memory (`locate` for large sets)."""
        located = self.locate(clips, progress, encode_missing)
        return {clip: self.reader.rows([location])[0] for clip, location in located.items()}
