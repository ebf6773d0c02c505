"""Live video sources: frames as they arrive, for `vljepa stream SOURCE --live`.

A source is whatever the FFmpeg inside PyAV opens, read as it is produced:
- `-`: a pipe on standard input (a container that streams, such as MPEG-TS, Matroska or fragmented MP4);
- a URL: `rtsp://`, `http://`, `udp://`, ... (FFmpeg's network protocols; `timeout` bounds each read);
- a file that may still be growing, followed as `tail -f` follows it (`GrowingFile`): at its current end the
  reader waits for more bytes, and the stream ends once the file has not grown for `stall_seconds`. The
  container must be readable before it is finished (MPEG-TS, Matroska, fragmented MP4; a plain MP4 writes
  its index last).
Frames come with their presentation time in seconds, from the stream's clock. A source that cannot be opened
or sends data FFmpeg cannot decode is a `VideoError` naming it; a source that stops sending ends the stream
after `stall_seconds`, so nothing waits for ever.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from .video import VideoError, decoded_frames, rgb_converter

READ_POLL_SECONDS = 0.02  # how often a follower looks for new bytes at the end of a growing file
# FFmpeg probes a stream before its first frame, by default up to 5 s of it: a live reader starts after a tenth
# of a second of video instead (measured on a 640x360, 30 fps MPEG-TS written in real time: first frames 0.7 s
# behind with the defaults, 0.1 s with these; the median frame 0.1 s either way)
PROBE = {"analyzeduration": "100000", "probesize": "2048"}


class GrowingFile(io.RawIOBase):
    """A file read while another process appends to it: a read at its end waits for new bytes and returns
    end-of-file only after `stall_seconds` without growth."""

    def __init__(self, path: str | Path, stall_seconds: float):
        super().__init__()
        self.path, self.stall_seconds = Path(path), stall_seconds
        self.handle = open(self.path, "rb")  # noqa: SIM115 - closed with this object
        self.last_growth = time.monotonic()
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.ended:
            count = self.handle.readinto(buffer)
            if count:
                self.last_growth = time.monotonic()
                return count
            self.ended = time.monotonic() - self.last_growth > self.stall_seconds
            time.sleep(READ_POLL_SECONDS)
        return 0

    def close(self) -> None:
        self.handle.close()
        super().close()


def open_source(source: str, stall_seconds: float) -> av.container.InputContainer:
    """The container of a live source (see the module docstring)."""
    if source == "-":
        return av.open(sys.stdin.buffer, mode="r", options=PROBE)
    if "://" in source:
        return av.open(source, mode="r", options=PROBE, timeout=(stall_seconds, stall_seconds))
    if not Path(source).exists():
        raise VideoError(f"{source}: no such file, device or URL")
    if Path(source).is_char_device():  # a capture device (V4L2 on Linux), where this FFmpeg supports it
        return av.open(source, mode="r")
    return av.open(
        GrowingFile(source, stall_seconds), mode="r", options=PROBE
    )  # unbuffered: a read returns what has arrived


def live_frames(source: str, stall_seconds: float = 5.0) -> Iterator[tuple[np.ndarray, float]]:
    """(RGB frame (H, W, 3) uint8, time in seconds from the stream's first frame) as frames arrive."""
    try:
        with open_source(source, stall_seconds) as container:
            if not container.streams.video:
                raise VideoError(f"{source}: no video stream")
            stream = container.streams.video[0]
            to_rgb, first = rgb_converter(), None
            for index, frame in enumerate(decoded_frames(container, stream)):
                stamp = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
                first = stamp if first is None else first
                yield to_rgb(frame), stamp - first
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"{source}: cannot read the live source ({type(error).__name__}: {error})") from error
