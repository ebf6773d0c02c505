"""Frozen-feature cache: X-encoder tokens computed once per clip, reused across epochs and stages.

The encoder is frozen, so its tokens for a clip never change while its weights and the preprocessing
stay the same. The cache lives in `<dir>/<fingerprint>/`, where the fingerprint hashes the encoder's
weights, the preprocessing and the frame view; change either and a fresh cache is used. Inside,
`index.json` maps a clip key (resolved path, file size and mtime, time window) to a row of a
safetensors shard; new clips are encoded in batches and appended as a new shard (atomic writes).
A clip that cannot be decoded is reported, not cached, and not fatal: callers skip its records.
Several processes may share a cache only if one of them encodes: the others read with
`encode_missing=False` once it is done (the ranks of a torchrun launch: rank 0 encodes).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..config import XEncoderConfig
from ..progress import progress_bar
from ..x_encoder import XEncoder
from .manifest import ClipRef
from .transforms import preprocess_clip, preprocessing_signature
from .video import VideoError, read_clip


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
    def __init__(self, directory: str | Path, x_encoder: XEncoder, view: str = "clip", batch_size: int = 64):
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose from {sorted(VIEWS)}")
        self.x_encoder, self.view, self.batch_size = x_encoder, view, batch_size
        config: XEncoderConfig = x_encoder.config
        signature = json.dumps({"encoder": x_encoder.fingerprint(), "pre": preprocessing_signature(config),
                                "view": view}, sort_keys=True)
        self.directory = Path(directory) / hashlib.sha256(signature.encode()).hexdigest()[:16]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index_path = self.directory / "index.json"
        self.index: dict[str, list] = json.loads(self.index_path.read_text()) if self.index_path.is_file() else {}
        self.failed: dict[str, str] = {}  # clip path -> error message, for this session
        self._shards: dict[str, torch.Tensor] = {}

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
        device = next(self.x_encoder.parameters()).device
        with (progress_bar(f"encoding {len(clips)} clips ({self.view})", len(clips), enabled=progress) as advance,
              ThreadPoolExecutor(os.cpu_count() or 1) as readers):
            for start in range(0, len(clips), self.batch_size):
                batch = clips[start:start + self.batch_size]
                batch_keys, videos = [], []
                for clip, frames in zip(batch, list(readers.map(self._read_frames, batch))):
                    if isinstance(frames, Exception):
                        self.failed[clip.path] = str(frames)
                        continue
                    batch_keys.append(clip_key(clip))
                    videos.append(preprocess_clip(frames, self.x_encoder.config))
                if videos:
                    rows.append(self.x_encoder(torch.stack(videos).to(device)).to(torch.float16).cpu())
                    keys.extend(batch_keys)
                advance(len(batch))
        if not keys:
            return
        shard = f"shard_{len({s for s, _ in self.index.values()}):05d}.safetensors"
        tokens = torch.cat(rows)
        tmp = self.directory / (shard + ".tmp")
        save_file({"tokens": tokens}, str(tmp))
        tmp.replace(self.directory / shard)
        self._shards[shard] = tokens
        self.index.update({key: [shard, row] for row, key in enumerate(keys)})
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.index))
        tmp.replace(self.index_path)

    def _shard(self, name: str) -> torch.Tensor:
        if name not in self._shards:
            self._shards[name] = load_file(str(self.directory / name))["tokens"]
        return self._shards[name]

    def tokens(self, clips: list[ClipRef], progress: bool = True,
               encode_missing: bool = True) -> dict[ClipRef, torch.Tensor]:
        """Tokens (N, D) float16 for every clip that decodes; failures are in `self.failed`. With
        `encode_missing=False` a clip not in the cache counts as failed (another process fills the cache)."""
        unique = list(dict.fromkeys(clips))
        keys: dict[ClipRef, str] = {}
        for clip in unique:
            try:
                keys[clip] = clip_key(clip)
            except OSError:
                self.failed[clip.path] = f"{clip.path}: file not found"
        missing = [clip for clip, key in keys.items() if key not in self.index]
        if missing and encode_missing:
            self._encode_missing(missing, progress)
        elif missing:
            self.failed.update({c.path: f"{c.path}: not in the feature cache {self.directory} (read-only here)"
                                for c in missing})
        return {clip: self._shard(self.index[key][0])[self.index[key][1]]
                for clip, key in keys.items() if key in self.index}
