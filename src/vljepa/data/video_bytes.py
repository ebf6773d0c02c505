"""Decoding a clip from a video's bytes (a tar member of a shard) rather than from a file path.

`video.py` reads files by path; a local shard holds its videos as byte ranges of a tar file, and a loader
worker reads one range and decodes it in memory (PyAV opens any file object) without writing it out. A
streamed shard (a `pipe:` or http URL) cannot be read at an offset later, so its videos' bytes are held
in memory (`VideoBytes.held`): whatever keeps such a video (a loader's shuffle buffer) keeps its bytes.
The frames are sampled exactly as `read_clip` samples them (`sample_indices`, the same window checks),
so a clip decoded from its shard equals the clip read from the original file. A truncated video is used as
far as it decodes, without `read_clip`'s warning.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

from .video import (
    IMAGE_SUFFIXES,
    VideoError,
    check_window,
    decoded_frames,
    rgb_converter,
    sample_indices,
    use_decoder_threads,
)


@dataclass(frozen=True)
class VideoBytes:
    """A video's bytes: a whole file (`size` -1), a member of a local tar shard (a byte range of `path`), or
    bytes held in memory (`data`, a sample of a streamed shard; `path` is then the shard's URL). `name`
    names it in errors (`shard.tar/000000042.mp4`); `ext` is its extension without the dot (`mp4`, `png`)."""

    path: str
    offset: int
    size: int
    ext: str
    name: str
    data: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def held(cls, url: str, data: bytes, ext: str, name: str) -> VideoBytes:
        """A video whose bytes are in memory (read from the stream of the shard at `url`)."""
        return cls(url, 0, len(data), ext, name, data)

    @property
    def is_image(self) -> bool:
        return f".{self.ext.lower()}" in IMAGE_SUFFIXES

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            return file.read() if self.size < 0 else file.read(self.size)


def _decode_all(data: bytes, name: str) -> tuple[list[av.VideoFrame], list[float]]:
    """Every decoded frame (still in the decoder's pixel format: converting only the sampled ones to RGB
    halves the cost) and its time."""
    if not data:
        raise VideoError(f"{name}: empty file")
    frames, times = [], []
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise VideoError(f"{name}: no video stream")
            stream = container.streams.video[0]
            use_decoder_threads(stream)
            for index, frame in enumerate(decoded_frames(container, stream)):
                times.append(float(frame.time) if frame.time is not None else index / float(stream.average_rate or 1))
                frames.append(frame)
    except VideoError:
        raise
    except Exception as error:  # PyAV raises many error types; report them all by name
        raise VideoError(f"{name}: cannot decode ({type(error).__name__}: {error})") from error
    if not frames:
        raise VideoError(f"{name}: no decodable frames")
    return frames, times


def decode_clip(
    video: VideoBytes, num_frames: int, start: float | None = None, end: float | None = None
) -> torch.Tensor:
    """Frames (num_frames, H, W, 3) uint8 sampled uniformly from [start, end) of the video, as `read_clip` does."""
    name = Path(video.name)
    check_window(name, start, end, None)
    frames, times = _decode_all(video.read(), video.name)
    if video.is_image:
        frames, times = frames[:1], [0.0]
    else:
        check_window(name, start, end, times[-1] + (times[1] - times[0] if len(times) > 1 else 0.0))
    chosen, to_rgb = sample_indices(times, num_frames, start, end), rgb_converter()
    return torch.from_numpy(np.stack([to_rgb(frames[i]) for i in chosen]))
