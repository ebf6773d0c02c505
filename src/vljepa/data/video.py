"""Video and image I/O through PyAV (its wheel bundles FFmpeg, no system ffmpeg needed).

`read_clip` returns `num_frames` frames sampled uniformly from [start, end) of a file as a uint8
tensor (T, H, W, 3). An image (png/jpg) is a one-frame video. `iter_windows` decodes a long video
once and yields its sliding windows as soon as each is complete, holding only one window of frames
(the way a live stream is read). Any failure raises `VideoError` naming the file, so a bad sample
in a manifest is reported by path: a missing or empty file, one PyAV cannot open, one without a video
stream or without a decodable frame, and a time window that is empty (start >= end), starts before 0
or starts at or after the end of the video (an image has no time: its window is not checked against a
duration). A truncated file whose surviving frames decode (fewer than its header declares) is used,
with a `TruncatedVideoWarning` naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from ..errors import VljepaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class VideoError(VljepaError, RuntimeError):
    """A video or image could not be read; the message names the file."""


class TruncatedVideoWarning(UserWarning):
    """A video decoded fewer frames than its header declares; the surviving ones are used."""


def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """Write uint8 frames (T, H, W, 3) as an H.264 mp4. Byte-identical across runs (no mbtree)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    _, height, width, _ = frames.shape
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(
            "libx264",
            rate=Fraction(fps).limit_denominator(1000),
            options={"crf": str(crf), "x264-params": "no-mbtree=1:threads=1", "preset": "veryfast"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@contextmanager
def _reporting_errors(path: Path) -> Iterator[None]:
    """Turn any PyAV failure into a `VideoError` that names the file."""
    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file")
    try:
        yield
    except VideoError:
        raise
    except Exception as error:  # PyAV raises many error types; report them all by file
        raise VideoError(f"{path}: cannot decode ({type(error).__name__}: {error})") from error


def _iter_frames(path: Path) -> Iterator[tuple[np.ndarray, float]]:
    """(rgb frame, time in seconds) in decoding order."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = 0
        for index, frame in enumerate(container.decode(stream)):
            time = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 1)
            yield frame.to_ndarray(format="rgb24"), time
            decoded += 1
        if 0 < decoded < stream.frames:
            warnings.warn(
                f"{path}: decoded {decoded} of the {stream.frames} frames its header declares (a "
                f"truncated file?); using the frames that survive",
                TruncatedVideoWarning,
                stacklevel=2,
            )


def _decode_all(path: Path) -> tuple[list[np.ndarray], list[float]]:
    decoded = list(_iter_frames(path))
    if not decoded:
        raise VideoError(f"{path}: no decodable frames")
    return [f for f, _ in decoded], [t for _, t in decoded]


def sample_indices(times: list[float], num_frames: int, start: float | None, end: float | None) -> list[int]:
    """Indices of `num_frames` frames spread uniformly over the frames whose time lies in [start, end)."""
    lo = start if start is not None else -float("inf")
    hi = end if end is not None else float("inf")
    window = [i for i, t in enumerate(times) if lo <= t < hi]
    if not window:  # a window shorter than one frame: take the nearest frame
        target = lo if start is not None else 0.0
        window = [min(range(len(times)), key=lambda i: abs(times[i] - target))]
    positions = np.linspace(0, len(window) - 1, num_frames) if num_frames > 1 else np.array([(len(window) - 1) / 2])
    return [window[int(round(p))] for p in positions]


def check_window(path: Path, start: float | None, end: float | None, duration: float | None) -> None:
    """Raise `VideoError` for a window that selects nothing: start < 0, start >= end, or start at or
    after `duration` (None: not checked)."""
    if start is not None and start < 0:
        raise VideoError(f"{path}: start {start} s is negative")
    if start is not None and end is not None and start >= end:
        raise VideoError(f"{path}: start {start} s is not before end {end} s")
    if start is not None and duration is not None and start >= duration:
        raise VideoError(f"{path}: start {start} s is beyond the video's duration {duration:.3f} s")


def read_clip(path: str | Path, num_frames: int, start: float | None = None, end: float | None = None) -> torch.Tensor:
    """Frames (num_frames, H, W, 3) uint8 from a video or image file, uniformly sampled in [start, end)."""
    path = Path(path)
    check_window(path, start, end, None)
    with _reporting_errors(path):
        frames, times = _decode_all(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        frames, times = frames[:1], [0.0]
    else:
        check_window(path, start, end, times[-1] + _frame_step(times))
    chosen = sample_indices(times, num_frames, start, end)
    return torch.from_numpy(np.stack([frames[i] for i in chosen]))


def read_leading_frames(path: str | Path, count: int) -> list[np.ndarray]:
    """The first `count` decodable frames (H, W, 3) uint8 of a video or image (fewer if it is shorter),
    decoding nothing after them."""
    path = Path(path)
    frames: list[np.ndarray] = []
    with _reporting_errors(path):
        for frame, _ in _iter_frames(path):
            frames.append(frame)
            if len(frames) == count:
                break
    if not frames:
        raise VideoError(f"{path}: no decodable frames")
    return frames


def _frame_step(times: list[float]) -> float:
    return times[1] - times[0] if len(times) > 1 else 0.0


def video_duration(path: str | Path) -> float:
    """Duration in seconds (time of the last frame plus one frame period)."""
    path = Path(path)
    with _reporting_errors(path):
        _, times = _decode_all(path)
    return times[-1] + _frame_step(times)


def sliding_windows(duration: float, length: float, stride: float) -> list[tuple[float, float]]:
    """(start, end) of windows of `length` seconds every `stride` seconds covering [0, duration];
    a stream shorter than one window gives one window; the last window ends at `duration`."""
    if length <= 0 or stride <= 0:
        raise ValueError(f"window length {length} and stride {stride} must be positive")
    if duration <= length:
        return [(0.0, float(duration))]
    count = int(np.ceil((duration - length) / stride - 1e-9)) + 1
    starts = np.minimum(np.arange(count) * stride, duration - length)
    return [(float(s), float(s + length)) for s in starts]


def iter_windows(
    path: str | Path, length: float, stride: float, num_frames: int
) -> Iterator[tuple[tuple[float, float], torch.Tensor]]:
    """Yield ((start, end), frames (num_frames, H, W, 3)) for the windows of
    `sliding_windows(duration, length, stride)`, each as soon as the video passes its end,
    sampled as `read_clip(path, num_frames, start, end)` would; only the last `length` s are held."""
    if length <= 0 or stride <= 0:
        raise ValueError(f"window length {length} and stride {stride} must be positive")
    path = Path(path)
    frames: list[np.ndarray] = []
    times: list[float] = []
    first_times: list[float] = []  # the first two frame times: the frame period, for the duration
    emitted = 0  # windows yielded so far; while streaming, window k is [k * stride, k * stride + length)

    def window(start: float, end: float) -> tuple[tuple[float, float], torch.Tensor]:
        chosen = sample_indices(times, num_frames, start, end)
        return (start, end), torch.from_numpy(np.stack([frames[i] for i in chosen]))

    with _reporting_errors(path):
        for frame, time in _iter_frames(path):
            while time >= emitted * stride + length:  # the video has passed the end of window `emitted`
                yield window(emitted * stride, emitted * stride + length)
                emitted += 1
            frames.append(frame)
            times.append(time)
            first_times = (first_times + [time])[:2]
            while times[0] < time - length:  # every window still to come starts later
                frames.pop(0), times.pop(0)
    if not times:
        raise VideoError(f"{path}: no decodable frames")
    for start, end in sliding_windows(times[-1] + _frame_step(first_times), length, stride)[emitted:]:
        yield window(start, end)  # the windows that end with the video
