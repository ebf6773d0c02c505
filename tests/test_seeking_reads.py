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

from vljepa.data import video, video_gops
from vljepa.data.video import VideoError, read_clip, sample_indices, video_duration, write_video


def reference_read_clip(path: Path, num_frames: int, start: float | None, end: float | None) -> torch.Tensor:
    """Decode every frame to RGB, then sample: on one thread, skipping packets the decoder rejects, as
    `read_clip` decodes these small videos (a damaged packet decodes differently on frame threads)."""
    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.codec_context.thread_count = "SLICE", 1
        for index, frame in enumerate(frame for packet in container.demux(stream) for frame in decodable(packet)):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time) if frame.time is not None else index / float(stream.average_rate or 1))
    return torch.from_numpy(np.stack([frames[i] for i in sample_indices(times, num_frames, start, end)]))


def decodable(packet: av.Packet) -> list[av.VideoFrame]:
    try:
        return packet.decode()
    except av.error.InvalidDataError:
        return []


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
    planned = video._demux(path, duration / 2, duration / 2 + 0.2).times
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


def numbered_frame(index: int) -> np.ndarray:
    """32x32: a bar sweeping over a gradient (smooth motion, so that x264 uses B-frames) under the frame's
    number written in 4x4 blocks (every frame differs, so a wrong pick shows)."""
    frame = np.repeat(np.linspace(0, 160, 32, dtype=np.uint8)[None, :, None], 32, axis=0).repeat(3, axis=2)
    frame[8:, 4 + index % 24] = 255
    for bit in range(16):
        frame[bit // 8 * 4 : bit // 8 * 4 + 4, bit % 8 * 4 : bit % 8 * 4 + 4] = 255 * ((index >> bit) & 1)
    return frame


LONG_VIDEOS = {  # name: (codec, encoder options); 30 s at 30 fps, a keyframe at least every 10 frames
    "h264 without B-frames.mp4": ("libx264", {"g": "10", "bf": "0"}),
    "h264 B-frames.mp4": ("libx264", {"g": "10", "bf": "3"}),
    "h264 B-frames.mkv": ("libx264", {"g": "10", "bf": "3"}),
    "h264 open GOPs.mp4": ("libx264", {"g": "10", "bf": "3", "x264-params": "open-gop=1"}),
    "mpeg2 approximate seeks.ts": ("mpeg2video", {"g": "10"}),
}
CLOSED_GOPS = ("h264 without B-frames.mp4", "h264 B-frames.mp4", "h264 B-frames.mkv")


def encode_long(path: Path, codec: str, options: dict[str, str], seconds: int = 30, **muxer) -> Path:
    with av.open(str(path), mode="w", options=muxer) as container:
        stream = container.add_stream(codec, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(seconds * 30):
            for packet in stream.encode(av.VideoFrame.from_ndarray(numbered_frame(index), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("long")
    return {name: encode_long(folder / name, codec, options) for name, (codec, options) in LONG_VIDEOS.items()}


@pytest.fixture(scope="module")
def long_references(long_videos) -> dict[str, tuple[list[np.ndarray], list[float]]]:
    """Every frame of each long video and its time, decoded once (as `reference_read_clip` does)."""
    references = {}
    for name, path in long_videos.items():
        with av.open(str(path)) as container:
            decoded = list(container.decode(container.streams.video[0]))
        references[name] = [frame.to_ndarray(format="rgb24") for frame in decoded], [frame.time for frame in decoded]
    return references


def reference_sample(reference: tuple[list[np.ndarray], list[float]], num_frames: int, start, end) -> torch.Tensor:
    frames, times = reference
    return torch.from_numpy(np.stack([frames[i] for i in sample_indices(times, num_frames, start, end)]))


def test_long_videos_have_the_gops_they_are_made_for(long_videos):
    """Keyframes at least every 10 frames, and B-frames (frames decoded before they are shown) where asked."""
    for name, path in long_videos.items():
        with av.open(str(path)) as container:
            packets = [packet for packet in container.demux(container.streams.video[0]) if packet.size]
        assert sum(packet.is_keyframe for packet in packets) >= len(packets) // 10, name
        reordered = any(later.pts < earlier.pts for earlier, later in zip(packets, packets[1:], strict=False))
        assert reordered == (LONG_VIDEOS[name][1].get("bf", "0") != "0"), name


@pytest.mark.parametrize("name", LONG_VIDEOS)
@pytest.mark.parametrize(
    ("num_frames", "start", "end"),
    [(8, None, None), (1, None, None), (8, 10.05, 16.0), (8, 20.1, 21.3), (5, 25.0, None)],
)
def test_reading_long_videos_equals_decoding_every_frame(long_videos, long_references, name, num_frames, start, end):
    """The whole file, a window over many GOPs, one over a few and one to the end."""
    expected = reference_sample(long_references[name], num_frames, start, end)
    assert torch.equal(read_clip(long_videos[name], num_frames, start, end), expected)


@pytest.mark.parametrize("name", CLOSED_GOPS)
@pytest.mark.parametrize(("start", "end"), [(None, None), (10.05, 16.0)])
def test_a_long_read_decodes_only_the_gops_of_its_frames(long_videos, long_references, monkeypatch, name, start, end):
    """No single pass, and at most one GOP of 10 frames per chosen frame (and the file's last one) decoded."""
    path = long_videos[name]
    runs: list[video_gops.Run] = []

    def planned_runs(*args) -> list[video_gops.Run] | None:
        planned = video_gops.plan_runs(*args)
        runs.extend(planned or [])
        return planned

    def single_pass(*args):
        raise AssertionError("read in a single pass")

    monkeypatch.setattr(video, "plan_runs", planned_runs)
    monkeypatch.setattr(video, "_decode_keeping", single_pass)
    assert torch.equal(read_clip(path, 8, start, end), reference_sample(long_references[name], 8, start, end))
    assert 1 < len(runs) <= 9 and sum(run.last - run.first + 1 for run in runs) <= 9 * 10


def test_a_truncated_long_video_is_read_in_one_pass_and_warned_about(tmp_path):
    """20 s whose header declares 600 frames, cut to about 12 s: its last packet is incomplete."""
    path = encode_long(tmp_path / "cut.mp4", "libx264", {"g": "10", "bf": "3"}, seconds=20, movflags="faststart")
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with pytest.warns(video.TruncatedVideoWarning, match="of the 600 frames"):
        assert torch.equal(read_clip(path, 8), reference_read_clip(path, 8, None, None))
    assert torch.equal(read_clip(path, 8, 6.0, None), reference_read_clip(path, 8, 6.0, None))
    with pytest.raises(VideoError, match=r"start 15.0 s is beyond the video's duration"):
        read_clip(path, 4, 15.0, None)


def gop_packets(*gops: list[int]) -> list[video_gops.Packet]:
    """Packets in decoding order, one GOP per list of presentation times (frame numbers)."""
    return [video_gops.Packet(float(time), 100, index == 0) for gop in gops for index, time in enumerate(gop)]


def test_runs_skip_only_stretches_longer_than_a_seek():
    gop = video_gops.SEEK_COST_FRAMES  # frames per GOP: skipping one GOP costs about as much as a seek
    packets = gop_packets(*[list(range(first, first + gop)) for first in range(0, 10 * gop, gop)])
    times = [packet.time for packet in packets]
    assert video_gops.plan_runs(packets, times, [0, gop + 1, 2 * gop + 5]) is None  # nothing to skip
    assert video_gops.plan_runs(packets, times, [1, 4 * gop + 2, 4 * gop + 3, 9 * gop]) == [
        video_gops.Run(0, 0, 1),
        video_gops.Run(4 * gop, 4 * gop, 4 * gop + 3),
        video_gops.Run(9 * gop, 9 * gop, 9 * gop),
    ]
    assert video_gops.plan_runs(packets, times, [2 * gop + 3, 3 * gop + 1]) == [
        video_gops.Run(2 * gop, 2 * gop, 3 * gop + 1)
    ]


def test_a_gop_shown_before_its_keyframe_is_decoded_from_the_gop_before():
    """An open GOP (its B-frames, decoded after its keyframe, are shown before it and may refer to the GOP
    before) does not start a run; neither do packets without keyframe flags."""
    packets = gop_packets(list(range(0, 20)), [22, 20, 21, *range(23, 40)], list(range(40, 60)), list(range(60, 80)))
    times = sorted(packet.time for packet in packets)
    assert video_gops.plan_runs(packets, times, [25, 70]) == [video_gops.Run(0, 0, 25), video_gops.Run(60, 60, 70)]
    unflagged = [packet._replace(keyframe=False) for packet in packets]
    assert video_gops.plan_runs(unflagged, times, [25, 70]) is None
