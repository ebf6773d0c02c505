"""A live video source for tests and benchmarks: a video replayed in real time as MPEG-TS.

    python benchmarks/live_source.py VIDEO --out FILE|- [--fps 30] [--size 640x360] [--seconds 300]

Frames are written at their due wall-clock time (the video looped until `--seconds`, resampled to `--fps`),
each letterboxed into `--size` (the video scaled to the frame's height, centred on black: a model that
crops the centre sees the video itself), encoded as MPEG-TS (MPEG-2 video, a keyframe every second) and
flushed at once, to a file that grows as a recording does, or to standard output (`-`) for a pipe.
`--stop-after S` stops writing after S seconds without closing the output: a source that stalls.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import av
import numpy as np


def letterboxed(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` scaled (nearest neighbour) to `height` rows, centred on a black `width` x `height` canvas."""
    scale = height / frame.shape[0]
    inner = max(1, round(frame.shape[1] * scale))
    rows = np.minimum((np.arange(height) / scale).astype(int), frame.shape[0] - 1)
    columns = np.minimum((np.arange(inner) / scale).astype(int), frame.shape[1] - 1)
    canvas = np.zeros((height, width, 3), np.uint8)
    left = (width - inner) // 2
    canvas[:, left : left + inner] = frame[rows][:, columns][:, : width - left]
    return canvas


def source_frames(video: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return frames, float(stream.average_rate or 25)


def write_live(video: Path, out, fps: int, size: tuple[int, int], seconds: float, stop_after: float | None) -> None:
    frames, source_fps = source_frames(video)
    width, height = size
    container = av.open(out, mode="w", format="mpegts", options={"max_delay": "0", "flush_packets": "1"})
    stream = container.add_stream("mpeg2video", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.gop_size, stream.bit_rate, stream.max_b_frames = fps, 2_000_000, 0
    started = time.monotonic()
    for index in range(int(seconds * fps)):
        due = started + index / fps
        if stop_after is not None and due - started >= stop_after:
            time.sleep(3600)  # stalled: the output stays open and silent until the process is killed
        time.sleep(max(0.0, due - time.monotonic()))
        picture = letterboxed(frames[int(index / fps * source_fps) % len(frames)], width, height)
        for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            container.mux(packet)
        out.flush()
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--out", required=True, help="A file to grow, or - for standard output.")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--stop-after", type=float, default=None)
    arguments = parser.parse_args()
    size = tuple(int(v) for v in arguments.size.split("x"))
    out = sys.stdout.buffer if arguments.out == "-" else open(arguments.out, "wb")  # noqa: SIM115
    write_live(arguments.video, out, arguments.fps, size, arguments.seconds, arguments.stop_after)


if __name__ == "__main__":
    main()
