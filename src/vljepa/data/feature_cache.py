"""Frozen-feature cache: X-encoder tokens computed once per clip, reused across epochs and stages.

The encoder is frozen, so its tokens for a clip never change while its weights and the preprocessing
stay the same. The cache lives in `<dir>/<fingerprint>/`, where the fingerprint hashes the encoder's
weights, the preprocessing and the frame view; change either and a fresh cache is used. Inside,
`index.json` maps a clip key (resolved path, file size and mtime, time window) to a row of a
safetensors shard; new clips are encoded in batches and appended as a new shard.
A clip that cannot be decoded is reported, not cached, and not fatal: callers skip its records.
Several processes may fill one cache at once: each shard gets a name no other writer can choose (a
random uuid), is written atomically and completely before any index entry points at it, and the
index is updated under an exclusive `fcntl` lock by re-reading it from disk, merging the new entries
in (an entry already there is kept: both point at the same clip's tokens) and writing it atomically.
Two writers may both encode a clip that neither had cached; one copy is indexed, the other wasted.
The cache depends on the encoder only through `ClipEncoder`, so the data layer does not import the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write, exclusive_lock
from ..config import XEncoderConfig
from ..progress import progress_bar
from .manifest import ClipRef
from .video import VideoError, read_clip


class ClipEncoder(Protocol):
    """What the cache needs of a frozen encoder (`vljepa.x_encoder.XEncoder` is one)."""

    config: XEncoderConfig

    @property
    def device(self) -> torch.device: ...

    def fingerprint(self) -> str: ...

    def preprocessing_signature(self) -> dict: ...

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, video: torch.Tensor) -> torch.Tensor: ...


def single_frame_view(frames: torch.Tensor) -> torch.Tensor:
    """The middle frame repeated: the clip's length with no motion in it (a control input)."""
    return frames[len(frames) // 2].expand_as(frames).clone()


VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {"clip": None, "single_frame": single_frame_view}


def default_cache_dir() -> Path:
    """$VLJEPA_CACHE_DIR, else $XDG_CACHE_HOME/vljepa/features, else ~/.cache/vljepa/features."""
    if os.environ.get("VLJEPA_CACHE_DIR"):
        return Path(os.environ["VLJEPA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vljepa" / "features"


def clip_key(clip: ClipRef) -> str:
    stat = os.stat(clip.path)
    return f"{clip.path}|{clip.start}|{clip.end}|{stat.st_size}|{stat.st_mtime_ns}"


class FeatureCache:
    def __init__(self, directory: str | Path, x_encoder: ClipEncoder, view: str = "clip", batch_size: int = 64):
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose from {sorted(VIEWS)}")
        self.x_encoder, self.view, self.batch_size = x_encoder, view, batch_size
        signature = json.dumps(
            {"encoder": x_encoder.fingerprint(), "pre": x_encoder.preprocessing_signature(), "view": view},
            sort_keys=True,
        )
        self.directory = Path(directory) / hashlib.sha256(signature.encode()).hexdigest()[:16]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index_path = self.directory / "index.json"
        self.lock_path = self.directory / "index.lock"
        self.index: dict[str, list] = self._read_index()
        self.failed: dict[str, str] = {}  # clip path -> error message, for this session
        self._shards: dict[str, torch.Tensor] = {}

    def _read_index(self) -> dict[str, list]:
        """The index as on disk now (written atomically, so a reader never sees half of one)."""
        return json.loads(self.index_path.read_text()) if self.index_path.is_file() else {}

    def _add_shard(self, keys: list[str], tokens: torch.Tensor) -> None:
        """Write a uniquely named shard, then merge its rows into the index on disk under the lock."""
        shard = f"shard_{uuid.uuid4().hex}.safetensors"
        atomic_write(self.directory / shard, lambda tmp: save_file({"tokens": tokens}, str(tmp)))
        self._shards[shard] = tokens
        with exclusive_lock(self.lock_path):
            index = self._read_index()
            for row, key in enumerate(keys):
                index.setdefault(key, [shard, row])
            atomic_write(self.index_path, lambda tmp: tmp.write_text(json.dumps(index)))
        self.index = index

    def _read_frames(self, clip: ClipRef) -> torch.Tensor | Exception:
        """The clip's sampled frames in the cache's view, or the error that stopped the decoding."""
        try:
            frames = read_clip(clip.path, self.x_encoder.config.num_frames, clip.start, clip.end)
        except (VideoError, OSError) as error:
            return error
        view = VIEWS[self.view]
        return view(frames) if view else frames

    def _encode_missing(self, clips: list[ClipRef], progress: bool) -> None:
        """Decode each batch's clips on one thread per CPU, then preprocess and encode them. Decoding is
        kept apart from the torch work: interleaved with it, encoding the demo's clips took twice as long."""
        keys, rows = [], []
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
                advance(len(batch))
        if keys:
            self._add_shard(keys, torch.cat(rows))

    def _shard(self, name: str) -> torch.Tensor:
        if name not in self._shards:
            self._shards[name] = load_file(str(self.directory / name))["tokens"]
        return self._shards[name]

    def tokens(
        self, clips: list[ClipRef], progress: bool = True, encode_missing: bool = True
    ) -> dict[ClipRef, torch.Tensor]:
        """Tokens (N, D) float16 for every clip that decodes; failures are in `self.failed`. With
        `encode_missing=False` a clip not in the cache counts as failed (another process fills the cache)."""
        unique = list(dict.fromkeys(clips))
        keys: dict[ClipRef, str] = {}
        for clip in unique:
            try:
                keys[clip] = clip_key(clip)
            except OSError:
                self.failed[clip.path] = f"{clip.path}: file not found"
        if any(key not in self.index for key in keys.values()):
            self.index = self._read_index()  # another process may have added them
        missing = [clip for clip, key in keys.items() if key not in self.index]
        if missing and encode_missing:
            self._encode_missing(missing, progress)
        elif missing:
            self.failed.update(
                {c.path: f"{c.path}: not in the feature cache {self.directory} (read-only here)" for c in missing}
            )
        return {
            clip: self._shard(self.index[key][0])[self.index[key][1]] for clip, key in keys.items() if key in self.index
        }
