"""Reads that seek: `read_clip` equals decoding every frame and sampling them (the reference below) on
windows anywhere in videos of several codecs, containers and frame rates, while decoding only from the
keyframe before a window and holding only the chosen frames (memory independent of the video's length).
"""

from __future__ import annotations

import ctypes
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vljepa.data import video
from vljepa.data.video import VideoError, read_clip, sample_indices, video_duration, write_video


def reference_read_clip(path: Path, num_frames: int, start: float | None, end: float | None) -> torch.Tensor:
    """The reading this replaces: decode every frame to RGB, then sample."""
    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time) if frame.time is not None else index / float(stream.average_rate or 1))
    return torch.from_numpy(np.stack([frames[i] for i in sample_indices(times, num_frames, start, end)]))


def reference_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [
            float(frame.time) if frame.time is not None else index / float(stream.average_rate or 1)
            for index, frame in enumerate(container.decode(stream))
        ]
    return times[-1] + (times[1] - times[0])


def encode(
    path: Path, codec: str, fps: float, count: int, options: dict[str, str], pix_fmt: str = "yuv420p", **muxer
) -> Path:
    """`count` random 64x48 frames (every frame differs, so a wrong pick shows)."""
    frames = np.random.default_rng(count).integers(0, 255, (count, 48, 64, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", options=muxer) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), options=options)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


VIDEOS = {  # name: (codec, fps, frames, encoder options); keyframes every few frames so that seeks land mid-file
    "h264 B-frames 30 fps.mp4": ("libx264", 30, 90, {"g": "12", "bf": "2"}),
    "h264 29.97 fps.mp4": ("libx264", 29.97, 60, {"g": "10"}),
    "h264 8 fps.mkv": ("libx264", 8, 40, {"g": "6", "bf": "3"}),
    "mpeg4 12 fps.avi": ("mpeg4", 12, 40, {"g": "6"}),
    "vp8 25 fps.webm": ("libvpx", 25, 50, {"g": "8"}),
    "animation 10 fps.gif": ("gif", 10, 24, {}),
    "mpeg2 25 fps.ts": ("mpeg2video", 25, 50, {"g": "8"}),
    "raw h264 without timestamps.h264": ("libx264", 25, 40, {"g": "8"}),  # cannot seek
}
# without a keyframe index: a seek lands anywhere (the read starts over from the file's start) or fails
NOT_INDEXED = ("animation 10 fps.gif", "mpeg2 25 fps.ts", "raw h264 without timestamps.h264")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("seeking")
    made = {}
    for name, (codec, fps, count, options) in VIDEOS.items():
        made[name] = encode(folder / name, codec, fps, count, options, "rgb8" if codec == "gif" else "yuv420p")
    return made


def windows(duration: float, step: float) -> list[tuple[float | None, float | None]]:
    """The whole file, windows mid-file, at the end, of one frame and shorter than one frame."""
    middle = round(duration / 2 / step) * step
    return [
        (None, None),
        (None, duration / 3),
        (duration / 3, 2 * duration / 3),
        (middle + 0.3 * step, duration + 5),  # from just after a frame to beyond the end
        (duration - 1.5 * step, None),  # the last frame or two
        (middle, middle + 0.5 * step),  # one frame
        (middle + 0.2 * step, middle + 0.4 * step),  # between two frames: the nearest one
    ]


@pytest.mark.parametrize("name", VIDEOS)
@pytest.mark.parametrize("num_frames", [1, 4, 16])
def test_read_clip_equals_decoding_every_frame(videos, name, num_frames):
    path = videos[name]
    _, fps, count, _ = VIDEOS[name]
    duration = reference_duration(path)
    assert video_duration(path) == pytest.approx(duration, abs=1e-3)
    for start, end in windows(duration, 1 / fps):
        expected = reference_read_clip(path, num_frames, start, end)
        assert torch.equal(read_clip(path, num_frames, start, end), expected), (start, end)


@pytest.mark.parametrize("name", [n for n in VIDEOS if n not in NOT_INDEXED])
def test_a_window_mid_file_starts_at_a_keyframe_after_the_file_start(videos, name):
    path = videos[name]
    duration = video_duration(path)
    planned = video._packet_times(path, duration / 2, duration / 2 + 0.2)
    assert 0 < planned[0] <= duration / 2 and planned[-1] >= duration / 2 + 0.2
    assert len(planned) < VIDEOS[name][2] / 2  # neither the frames before that keyframe nor after the window


def test_a_window_beyond_a_damaged_files_frames_is_refused(tmp_path):
    """The header declares 40 frames (5 s) but only the first ones survive: the window is checked against them."""
    path = encode(tmp_path / "cut.mp4", "libx264", 8, 40, {}, movflags="faststart")
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    assert video_duration(path) == 5.0
    with pytest.warns(video.TruncatedVideoWarning, match="decoded 23 of the 40 frames"):
        read_clip(path, 4)
    with pytest.raises(VideoError, match=r"start 4.5 s is beyond the video's duration"):
        read_clip(path, 4, 4.5, None)


def kilobytes(field: str) -> int:
    return next(int(line.split()[1]) for line in Path("/proc/self/status").open() if line.startswith(field + ":"))


def peak_growth_mb(read) -> float:
    """Growth of this process's peak RSS (MB) while `read()` runs. First the memory that earlier tests freed
    goes back to the system (else the allocator hands it out again without the RSS growing), then the peak
    is reset (Linux, glibc)."""
    ctypes.CDLL(None).malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = kilobytes("VmRSS")
    read()
    return (kilobytes("VmHWM") - before) / 1024


def sweeping_line(index: int, count: int) -> np.ndarray:
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, (index * 160) // count] = 255
    return frame


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="resets the peak RSS through Linux's /proc")
def test_reading_a_long_video_holds_only_the_chosen_frames(tmp_path):
    """A minute of 160x120 video is 104 MB of RGB frames: decoding them all would hold them all."""
    path = tmp_path / "minute.mp4"
    write_video(path, (sweeping_line(i, 60 * 30) for i in range(60 * 30)), fps=30, crf=40)
    read_clip(path, 8, 0.0, 0.5)  # loads the decoder's code and starts its threads, once per process
    for window in [(None, None), (10.0, 50.0)]:
        assert peak_growth_mb(lambda: read_clip(path, 8, *window)) < 16  # noqa: B023 (called at once)
    assert peak_growth_mb(lambda: reference_read_clip(path, 8, None, None)) > 100  # the measure has teeth
