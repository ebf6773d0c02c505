"""Video and image I/O through PyAV (its wheel bundles FFmpeg, no system ffmpeg needed).

`read_clip` returns `num_frames` frames sampled uniformly from [start, end) of a file as a uint8
tensor (T, H, W, 3) (`read_clip_array`: the same as a numpy array; this module imports torch only to
make tensors, so the ONNX runtime reads video without it): the frames whose time lies in the window, `num_frames` positions spread evenly
over them (`sample_indices`; a window shorter than one frame gives the frame nearest its start). An
image (png/jpg) is a one-frame video.

Reads that seek, holding only the chosen frames (ours: a read's memory grows only with the frames it
samples, and its decoding with the groups of pictures (GOPs) that hold them, not with the file's length):
1. A window with a start seeks (`container.seek(..., backward=True)`) to the keyframe at or before it;
   a read without one starts at the file's start.
2. The packets (time, size, keyframe flag) are demuxed without decoding, up to the first frame at or after
   the window's end (the whole file without an end); their times choose the frames. Header metadata
   (duration, frame count, average rate) would save this pass but is not exact for variable frame rates,
   edit lists or damaged files; demuxing is cheap next to decoding.
3. Only the GOPs that hold the chosen frames are decoded (`video_gops`), and the file's last one when the
   read reaches its end (so that the window is checked against a frame that decodes): each run of them
   seeks to its keyframe and decodes to the last frame it needs, converting only the chosen frames to
   RGB, checking that the packets and the frames' times are the planned ones. A stretch of at most
   `SEEK_COST_FRAMES` (16) frames between two needed GOPs is decoded through (a seek costs about as much
   as decoding a few frames); a read that would then skip nothing (a short window) is left to step 4,
   as is any doubt: packets without keyframe flags, flagged corrupt or fewer than the header declares, a
   seek that lands after the keyframe, frames that differ from the plan, an FFmpeg error.
4. One decoding pass from the starting point to the window's end converts only the chosen frames. If
   the decoded frames' times differ from the packets' (packets without timestamps, frames that fail to
   decode in a damaged file), the times just decoded choose the frames and a second pass keeps them. If
   the seek fails (a raw H.264 stream) or lands after the window's start (containers without a keyframe
   index, such as MPEG-TS, seek approximately), the read starts over from the file's start.
So the result equals decoding every frame and sampling them (tests/test_seeking_reads.py), given that a
GOP the read skips decodes to one frame per packet, as every GOP of an undamaged file does.
Decoding costs (ours): frames are converted to RGB through one swscale context per read (`rgb_converter`)
rather than one per frame, and larger than `DECODE_MAX_SHORT_SIDE` on their shorter side are downscaled in
that conversion, so that memory does not grow with the source's resolution; the decoder runs on one thread for frames under 640x360 and in DataLoader
workers (`use_decoder_threads`), where starting frame threads costs more than they save; and a packet the
decoder rejects as invalid data is skipped, as FFmpeg's command line does (`decoded_frames`).
`video_duration` reads the header (the stream's duration, else the container's) and decodes only when
neither is there.

`iter_windows` decodes a long video once and yields its sliding windows as soon as each is complete,
holding only one window of frames (the way a live stream is read). Any failure raises `VideoError`
naming the file, so a bad sample in a manifest is reported by path: a missing or empty file, one PyAV
cannot open, one without a video stream or without a decodable frame, and a time window that is empty
(start >= end), starts before 0 or starts at or after the end of the video (the header's duration, or
the last frame that decodes when the read reaches the file's end; an image has no time: its window is
not checked against a duration). A truncated file whose surviving frames decode (fewer than its header
declares) is used, with a `TruncatedVideoWarning` naming the file when a read from its start reaches
its end.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import VljepaError
from .video_gops import Packet, decode_runs, plan_runs

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
FRAME_THREADS_MIN_PIXELS = 640 * 360  # smaller frames decode faster on one thread
# Frames are converted to RGB at a shorter side of at most this many pixels, whatever the source: the model resizes
# them to its own size (256 px for V-JEPA 2, 384 for its largest variant) anyway, and an RGB frame of 8K video is
# 100 MB. With it, classifying an 8K clip peaks near a 360p clip's memory (BENCHMARKS.md, "Decoding memory").
DECODE_MAX_SHORT_SIDE = 512
FRAME_THREADS_MAX_PIXELS = 3840 * 2160 + 1  # above 4K each frame thread holds frames of 100 MB and more: one thread


class VideoError(VljepaError, RuntimeError):
    """A video or image could not be read; the message names the file."""


class TruncatedVideoWarning(UserWarning):
    """A video decoded fewer frames than its header declares; the surviving ones are used."""


def write_video(path: str | Path, frames: np.ndarray | Iterable[np.ndarray], fps: float, crf: int = 18) -> None:
    """Write uint8 frames (T, H, W, 3), or an iterable of (H, W, 3) frames (a video longer than memory), as
    an H.264 mp4. Byte-identical across runs (no mbtree)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if stream is None:
                stream = container.add_stream(
                    "libx264",
                    rate=Fraction(fps).limit_denominator(1000),
                    options={"crf": str(crf), "x264-params": "no-mbtree=1:threads=1", "preset": "veryfast"},
                )
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
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


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoError(f"{path}: no video stream")
    stream = container.streams.video[0]
    use_decoder_threads(stream)
    return stream


def use_decoder_threads(stream: av.video.stream.VideoStream) -> None:
    """Decode on one thread per core only where that pays: frames of `FRAME_THREADS_MIN_PIXELS` and more, in
    a process that is not a DataLoader worker. Starting the decoder's threads costs more than they save on
    small frames, and loader workers are already one process per core."""
    pixels = (stream.width or 0) * (stream.height or 0)
    large = FRAME_THREADS_MIN_PIXELS <= pixels < FRAME_THREADS_MAX_PIXELS
    torch = sys.modules.get("torch")  # a process that never imported torch is no DataLoader worker
    in_loader_worker = torch is not None and torch.utils.data.get_worker_info() is not None
    if large and not in_loader_worker:
        stream.thread_type = "AUTO"
    else:
        stream.thread_type, stream.codec_context.thread_count = "SLICE", 1


def decoded_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.VideoFrame]:
    """`container.decode(stream)`, except that a packet the decoder rejects as invalid data (a damaged or
    truncated file) is skipped, as FFmpeg's command line skips it, instead of ending the read: a decoder on
    one thread raises at such a packet where frame threads only log it."""
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        yield from frames


def rgb_converter(max_short_side: int = DECODE_MAX_SHORT_SIDE) -> Callable[[av.VideoFrame], np.ndarray]:
    """A function from a decoded frame to (H, W, 3) uint8 RGB through one reused swscale context, downscaled
    (area averaging) to a shorter side of `max_short_side` when it is larger. `frame.to_ndarray(format="rgb24")`
    sets up a context for every frame, which costs more than decoding a small frame; one converter per read
    keeps the set-up to once (the pixels are the same)."""
    reformatter = VideoReformatter()

    def convert(frame: av.VideoFrame) -> np.ndarray:
        short = min(frame.width, frame.height)
        if short <= max_short_side:
            return reformatter.reformat(frame, format="rgb24").to_ndarray()
        width, height = round(frame.width * max_short_side / short), round(frame.height * max_short_side / short)
        return reformatter.reformat(frame, width, height, format="rgb24", interpolation="AREA").to_ndarray()

    return convert


def _frame_time(frame: av.VideoFrame, index: int, stream: av.video.stream.VideoStream) -> float:
    return float(frame.time) if frame.time is not None else index / float(stream.average_rate or 1)


def _warn_if_truncated(path: Path, decoded: int, declared: int) -> None:
    if 0 < decoded < declared:
        warnings.warn(
            f"{path}: decoded {decoded} of the {declared} frames its header declares (a "
            f"truncated file?); using the frames that survive",
            TruncatedVideoWarning,
            stacklevel=3,
        )


def _iter_frames(path: Path) -> Iterator[tuple[np.ndarray, float]]:
    """(rgb frame, time in seconds) in decoding order."""
    with av.open(str(path)) as container:
        stream = _video_stream(container, path)
        decoded, to_rgb = 0, rgb_converter()
        for index, frame in enumerate(decoded_frames(container, stream)):
            yield to_rgb(frame), _frame_time(frame, index, stream)
            decoded += 1
        _warn_if_truncated(path, decoded, stream.frames)


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


@contextmanager
def _opened(
    path: Path, seek: float | None
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The file's video stream, positioned at its start or at the keyframe at or before `seek` seconds."""
    with av.open(str(path)) as container:
        stream = _video_stream(container, path)
        if seek is not None:
            container.seek(int(Fraction(seek) / stream.time_base), stream=stream, backward=True)
        yield container, stream


class _Demuxed(NamedTuple):
    packets: list[Packet]  # in decoding order, from the read's starting point to where demuxing stopped
    times: list[float]  # the sorted frame times from the starting point to the first at or after `end`
    to_the_end: bool  # the read reaches the end of the file (no frame at or after `end`)
    whole: bool  # no packet flagged corrupt or to discard; read from start to end: as many as the header says


def _demux(path: Path, seek: float | None, end: float | None) -> _Demuxed | None:
    """The packets from the read's starting point (the file's start or the keyframe at or before `seek`) to
    the first frame at or after `end` (None: to the end of the file), read without decoding them; None if a
    packet has no timestamp. Packets come in decoding order, so reading stops once a packet's decoding time
    passes the earliest frame at or after `end` seen so far: no later packet can be shown before it (a frame
    is never shown before it is decoded)."""
    packets: list[Packet] = []
    whole = True
    first_after = float("inf")  # the earliest frame time at or after `end` seen so far
    with _opened(path, seek) as (container, stream):
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's closing empty packet
                continue
            if packet.pts is None:
                return None
            if packet.dts is not None and float(packet.dts * stream.time_base) >= first_after:
                to_the_end = False
                break
            packets.append(Packet(float(packet.pts * stream.time_base), packet.size, bool(packet.is_keyframe)))
            whole = whole and not (packet.is_corrupt or packet.is_discard)
            if end is not None and packets[-1].time >= end:
                first_after = min(first_after, packets[-1].time)
        else:  # the end of the file
            to_the_end = first_after == float("inf")
            whole = whole and not (seek is None and 0 < stream.frames != len(packets))
    times = sorted(packet.time for packet in packets if packet.time <= first_after)
    return _Demuxed(packets, times, to_the_end, whole)


class _Decoded(NamedTuple):
    kept: dict[int, np.ndarray]  # position from the read's starting point -> RGB frame
    times: list[float]  # every decoded frame's time
    to_the_end: bool  # the decoding reached the end of the file
    declared: int  # the number of frames the header declares (0: unknown)


def _decode_keeping(path: Path, seek: float | None, end: float | None, keep: set[int]) -> _Decoded:
    """Decode from the read's starting point to the first frame at or after `end`, converting to RGB only
    the frames at the positions in `keep`."""
    kept: dict[int, np.ndarray] = {}
    times: list[float] = []
    to_rgb = rgb_converter()
    with _opened(path, seek) as (container, stream):
        for index, frame in enumerate(decoded_frames(container, stream)):
            times.append(_frame_time(frame, index, stream))
            if index in keep:
                kept[index] = to_rgb(frame)
            if end is not None and times[-1] >= end:
                return _Decoded(kept, times, False, stream.frames)
        return _Decoded(kept, times, True, stream.frames)


def _decode_gops(path: Path, demuxed: _Demuxed, chosen: list[int]) -> dict[int, np.ndarray] | None:
    """The frames at the positions `chosen` of `demuxed.times`, decoding only the GOPs that hold them (and
    the last one when the plan reaches the file's end, so that its last frame is one that decodes); None
    when that would skip nothing or cannot be sure to equal a single pass (`video_gops`)."""
    needed = sorted({*chosen, len(demuxed.times) - 1} if demuxed.to_the_end else set(chosen))
    runs = plan_runs(demuxed.packets, demuxed.times, needed) if demuxed.whole else None
    if runs is None:
        return None
    try:
        with _opened(path, None) as (container, stream):
            return decode_runs(container, stream, demuxed.packets, demuxed.times, runs, set(chosen), rgb_converter())
    except av.error.FFmpegError:
        return None


def _metadata_duration(path: Path) -> float | None:
    """Duration in seconds from the stream's or the container's header (no decoding); None if absent."""
    with av.open(str(path)) as container:
        stream = _video_stream(container, path)
        if stream.duration and stream.time_base:
            return float((stream.duration + (stream.start_time or 0)) * stream.time_base)
        if container.duration:
            return (container.duration + (container.start_time or 0)) / av.time_base
    return None


def _read_video(path: Path, num_frames: int, start: float | None, end: float | None) -> np.ndarray:
    """Sampled frames of a video, decoding only from the keyframe before `start` to `end` and keeping only
    the chosen frames (see the module docstring)."""
    check_window(path, start, end, _metadata_duration(path))
    for seek in [start, None] if start else [None]:
        try:
            demuxed = _demux(path, seek, end)
        except av.error.FFmpegError:
            if seek is None:
                raise
            continue  # a stream that cannot seek (a raw H.264 stream): read from the beginning
        if demuxed is None and seek is not None:
            continue  # no timestamps: frame times count frames from the file's start
        planned = demuxed.times if demuxed else None
        chosen = sample_indices(planned, num_frames, start, end) if planned else []
        if planned and (seek is None or planned[0] <= start):
            kept = _decode_gops(path, demuxed, chosen)
            if kept is not None:
                if demuxed.to_the_end:
                    check_window(path, start, end, planned[-1] + _frame_step(planned[-2:]))
                return np.stack([kept[i] for i in chosen])
        decoded = _decode_keeping(path, seek, end, set(chosen))
        times = decoded.times
        if seek is not None and (not times or times[0] > start):
            continue  # the seek landed after `start`: read from the beginning
        if not times:
            raise VideoError(f"{path}: no decodable frames")
        if decoded.to_the_end:  # the frames that decode may end before the header's duration (a damaged file)
            check_window(path, start, end, times[-1] + _frame_step(times[-2:]))
            if seek is None:
                _warn_if_truncated(path, len(times), decoded.declared)
        if times != planned:  # packets and frames disagree (frames that do not decode): decode again
            chosen = sample_indices(times, num_frames, start, end)
            decoded = _decode_keeping(path, seek, end, set(chosen))
        return np.stack([decoded.kept[i] for i in chosen])
    raise AssertionError("unreachable: reading from the beginning always returns")


def read_clip_array(
    path: str | Path, num_frames: int, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """Frames (num_frames, H, W, 3) uint8 from a video or image file, uniformly sampled in [start, end)."""
    path = Path(path)
    check_window(path, start, end, None)
    with _reporting_errors(path):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            kept = _decode_keeping(path, None, None, {0}).kept
            if not kept:
                raise VideoError(f"{path}: no decodable frames")
            return np.stack([kept[0]] * num_frames)
        return _read_video(path, num_frames, start, end)


def read_clip(path: str | Path, num_frames: int, start: float | None = None, end: float | None = None) -> torch.Tensor:
    """`read_clip_array` as a tensor."""
    import torch

    return torch.from_numpy(read_clip_array(path, num_frames, start, end))


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
    """Duration in seconds from the file's header; if it has none, the time of the last decoded frame
    plus one frame period."""
    path = Path(path)
    with _reporting_errors(path):
        duration = _metadata_duration(path)
        if duration is not None:
            return duration
        times = _decode_keeping(path, None, None, set()).times
    if not times:
        raise VideoError(f"{path}: no decodable frames")
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
    import torch

    for bounds, frames in iter_window_arrays(path, length, stride, num_frames):
        yield bounds, torch.from_numpy(frames)


def iter_window_arrays(
    path: str | Path, length: float, stride: float, num_frames: int
) -> Iterator[tuple[tuple[float, float], np.ndarray]]:
    """`iter_windows` as uint8 arrays, without PyTorch (an ONNX export's stream)."""
    path = Path(path)
    with _reporting_errors(path):
        yield from windows_of(_iter_frames(path), length, stride, num_frames, str(path))


def windows_of(
    frames: Iterable[tuple[np.ndarray, float]], length: float, stride: float, num_frames: int, source: str
) -> Iterator[tuple[tuple[float, float], np.ndarray]]:
    """The sliding windows of a stream of (frame, time): each ((start, end), frames (num_frames, H, W, 3)) as
    soon as the stream passes its end, then the windows that end with the stream; only the last `length`
    seconds of frames are held. A stream without frames is a `VideoError` naming `source`."""
    if length <= 0 or stride <= 0:
        raise ValueError(f"window length {length} and stride {stride} must be positive")
    kept: list[np.ndarray] = []
    times: list[float] = []
    first_times: list[float] = []  # the first two frame times: the frame period, for the duration
    emitted = 0  # windows yielded so far; while streaming, window k is [k * stride, k * stride + length)

    def window(start: float, end: float) -> tuple[tuple[float, float], np.ndarray]:
        chosen = sample_indices(times, num_frames, start, end)
        return (start, end), np.stack([kept[i] for i in chosen])

    for frame, time in frames:
        while time >= emitted * stride + length:  # the stream has passed the end of window `emitted`
            yield window(emitted * stride, emitted * stride + length)
            emitted += 1
        kept.append(frame)
        times.append(time)
        first_times = (first_times + [time])[:2]
        while times[0] < time - length:  # every window still to come starts later
            kept.pop(0), times.pop(0)
    if not times:
        raise VideoError(f"{source}: no decodable frames")
    for start, end in sliding_windows(times[-1] + _frame_step(first_times), length, stride)[emitted:]:
        yield window(start, end)  # the windows that end with the stream
