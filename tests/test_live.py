"""Live sources: a video written in real time by a child process, read as it grows, through a pipe and over
HTTP on 127.0.0.1; sources that stall or send garbage end with a clear error or a clean end, never a hang;
the queue between reader and model stays bounded and counts what it drops."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.data.live import live_frames
from vljepa.data.video import VideoError
from vljepa.tasks.live_captioner import LiveWindows
from vljepa.tasks.stream_captioner import StreamConfig

WRITER = Path(__file__).parents[1] / "benchmarks/live_source.py"
SECONDS = 4.0


def writer(video: Path, out: str, *extra: str, **options) -> subprocess.Popen:
    """A child process writing `video` in real time (8 fps, 64 x 64) as MPEG-TS to `out` (a file, or - )."""
    command = [sys.executable, str(WRITER), str(video), "--out", out, "--fps", "8", "--size", "64x64"]
    return subprocess.Popen([*command, "--seconds", str(SECONDS), *extra], **options)


def started(path: Path, process: subprocess.Popen) -> Path:
    """`path` once the writer has written into it."""
    deadline = time.monotonic() + 30
    while not (path.exists() and path.stat().st_size) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    return path


def test_a_growing_file_is_read_as_it_is_written(stream_video, tmp_path):
    target = tmp_path / "live.ts"
    child = writer(stream_video, str(target))
    began = time.monotonic()
    arrivals = [(time.monotonic() - began, stamp) for _, stamp in live_frames(str(started(target, child)), 1.0)]
    child.wait(timeout=30)
    assert len(arrivals) == int(SECONDS * 8)
    # frames arrive as they are written: the last a whole stream's length after the first, not all at once
    assert arrivals[-1][0] - arrivals[0][0] > 0.7 * (arrivals[-1][1] - arrivals[0][1])


def test_a_pipe_and_a_local_http_stream_give_the_same_frames(stream_video, tmp_path):
    piped = writer(stream_video, "-", stdout=subprocess.PIPE)
    reader = subprocess.run(
        [sys.executable, "-c", "from vljepa.data.live import live_frames; print(sum(1 for _ in live_frames('-', 2)))"],
        stdin=piped.stdout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    piped.wait(timeout=30)
    assert reader.returncode == 0, reader.stderr
    assert int(reader.stdout) == int(SECONDS * 8)

    target = tmp_path / "served.ts"
    child = writer(stream_video, str(target))
    started(target, child)

    class Growing(BaseHTTPRequestHandler):
        """The file as it grows, in HTTP chunks, until it stops growing; then the last (empty) chunk."""

        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            for header, value in (("Content-Type", "video/mp2t"), ("Transfer-Encoding", "chunked")):
                self.send_header(header, value)
            self.send_header("Connection", "close")
            self.end_headers()
            with open(target, "rb") as handle:
                idle = 0.0
                while idle < 1.0:
                    chunk = handle.read(65536)
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        idle = 0.0
                    else:
                        time.sleep(0.05)
                        idle += 0.05
                self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Growing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        frames = list(live_frames(f"http://127.0.0.1:{server.server_port}/live.ts", 5.0))
    finally:
        server.shutdown()
        child.wait(timeout=30)
    assert len(frames) == int(SECONDS * 8)


def test_garbage_is_a_clear_error_and_a_stalled_source_ends(stream_video, tmp_path):
    garbage = tmp_path / "garbage.ts"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    began = time.monotonic()
    with pytest.raises(VideoError, match="garbage.ts: (cannot read the live source|no video stream)"):
        list(live_frames(str(garbage), 0.5))
    with pytest.raises(VideoError, match="nothing.ts: no such file"):
        list(live_frames(str(tmp_path / "nothing.ts"), 0.5))
    stalled = tmp_path / "stalled.ts"
    child = writer(stream_video, str(stalled), "--stop-after", "1.5")  # writes 1.5 s, then stays open and silent
    try:
        frames = list(live_frames(str(started(stalled, child)), 1.0))
    finally:
        child.kill()
    assert 0 < len(frames) <= 1.5 * 8
    assert time.monotonic() - began < 30  # ended by the stall, not by the writer


def test_the_queue_is_bounded_and_counts_what_it_drops(stream_video, tmp_path):
    target = tmp_path / "live.ts"
    child = writer(stream_video, str(target))
    config = StreamConfig(window_seconds=0.5, stride_seconds=0.125, segmenter="online")
    windows = LiveWindows(str(started(target, child)), config, num_frames=2, queue_size=2, stall_seconds=1.0)
    time.sleep(SECONDS + 2)  # a model that never keeps up: nothing is taken while the whole stream arrives
    child.wait(timeout=30)
    assert windows.done.wait(timeout=10)
    assert windows.queue.qsize() == 2  # the queue's bound; the end waits for room
    kept = [window for batch in windows.batches(8) for window in batch]
    assert len(kept) == 2 and windows.dropped == windows.windows - 2 > 0


def test_stream_live_captions_as_the_meaning_changes(model_with_decoder, stream_video, tmp_path):
    model_dir, _ = model_with_decoder
    target = tmp_path / "live.ts"
    child = writer(stream_video, str(target))
    result = CliRunner().invoke(
        app,
        ["stream", str(started(target, child)), "-m", str(model_dir), "--live", "--stall", "1", "--window", "1"],
    )
    child.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert "[   0.00-" in result.output and "0 dropped" in result.output
