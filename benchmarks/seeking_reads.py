"""Reading a long video whole and in a window: wall time and peak RSS of `read_clip` and of `vljepa classify`.

Generates (once, cached in `--work`) a `--minutes`-long 640x360 H.264 video at 30 fps (a bar sweeping
over a gradient: cheap to encode; a keyframe every 250 frames, x264's default) and a small random VL-JEPA
(8 frames per clip), then runs each case in a fresh interpreter, `--repeats` times: `read_clip` of the
whole video, of a 5-s window mid-video and of one at its end (in `python -c`, so any checkout can run
it), and `vljepa classify` on the whole video and on the mid-video window (a checkout whose classify
has no --start/--end records the window case as unsupported). Peak RSS is each child's own
(its VmHWM, read every 50 ms while it runs); a child whose RSS passes `--rss-limit-gb` is killed and recorded as such (reading every
frame of ten minutes of 640x360 video holds 12 GB). `--src` points at the `src` folder of the checkout
to measure (default: this one); run it once per checkout to compare two versions of the reads:

    python benchmarks/seeking_reads.py --out benchmarks/results/seeking_reads.json
    python benchmarks/seeking_reads.py --src OTHER_CHECKOUT/src --out benchmarks/results/seeking_reads_other.json

Wall times need a quiet machine; peak RSS does not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vljepa.config import ModelConfig, PredictorConfig, XEncoderConfig, YEncoderConfig
from vljepa.data.video import write_video
from vljepa.eval.report import machine_description
from vljepa.model import VLJepa

FPS = 30


def frames(minutes: float, height: int, width: int) -> Iterator[np.ndarray]:
    """A vertical bar sweeping over a horizontal gradient, one frame at a time (never the whole video)."""
    gradient = np.broadcast_to(np.linspace(0, 200, width, dtype=np.uint8)[None, :, None], (height, width, 3))
    count = int(minutes * 60 * FPS)
    for index in range(count):
        frame = gradient.copy()
        x = (index * 8) % width
        frame[:, x : x + 16] = (255, 64, 0)
        yield frame


def prepare(work: Path, minutes: float) -> tuple[Path, Path]:
    video, model = work / f"sweep_{minutes:g}min_640x360.mp4", work / "model"
    if not video.is_file():
        started = time.perf_counter()
        write_video(work / "partial.mp4", frames(minutes, 360, 640), fps=FPS, crf=35)
        (work / "partial.mp4").rename(video)
        print(f"generated {video} in {time.perf_counter() - started:.0f} s", flush=True)
    if not model.is_dir():
        config = ModelConfig(
            shared_dim=32,
            x_encoder=XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, image_size=32, num_frames=8),
            predictor=PredictorConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
            y_encoder=YEncoderConfig(lr_multiplier=0.05),
        )
        VLJepa(config).save_pretrained(model)
    return video, model


READ = "import sys; from vljepa.data.video import read_clip; read_clip(sys.argv[1], 8, *map(float, sys.argv[2:]))"


def run(command: list[str], src: Path, rss_limit_gb: float) -> dict:
    """Wall time (s) and peak RSS (MB) of one run, or why it did not finish."""
    errors = tempfile.TemporaryFile()  # not a pipe: a child writing more than a pipe holds would block
    started = time.perf_counter()
    child = subprocess.Popen(
        command, env={**os.environ, "PYTHONPATH": str(src)}, stdout=subprocess.DEVNULL, stderr=errors
    )
    killed, peak_kb = False, 0
    while True:
        pid, status, _ = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak_kb = max(peak_kb, memory_kb(child.pid, "VmHWM"))
        if not killed and memory_kb(child.pid, "VmRSS") > rss_limit_gb * 2**20:
            child.kill()
            killed = True
        time.sleep(0.05)
    seconds, code = time.perf_counter() - started, os.waitstatus_to_exitcode(status)
    result = {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024, 1)}
    if killed:
        return {**result, "outcome": f"killed: RSS above {rss_limit_gb:g} GB"}
    errors.seek(0)
    if code == 2 and b"No such option: --start" in errors.read():
        return {"outcome": "unsupported: this checkout's classify has no --start/--end"}
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(command)}")
    return {**result, "outcome": "ok"}


def memory_kb(pid: int, field: str) -> int:
    """A memory figure of a running process from /proc (VmRSS: now; VmHWM: its peak since it started its
    program). The child's own VmHWM, polled, rather than `wait4`'s ru_maxrss: Linux carries the parent's
    peak into a child's ru_maxrss across fork and exec, and this parent holds a model."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith(field + ":")), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--work", type=Path, default=Path("runs/seeking_reads"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss-limit-gb", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/seeking_reads.json"))
    arguments = parser.parse_args()
    arguments.work.mkdir(parents=True, exist_ok=True)
    video, model = prepare(arguments.work, arguments.minutes)
    duration = arguments.minutes * 60
    middle, end = [str(duration / 2), str(duration / 2 + 5)], [str(duration - 5), str(duration)]
    classify = [arguments.python, "-m", "vljepa.cli", "classify", str(video), "-m", str(model), "--labels", "a,b"]
    read = [arguments.python, "-c", READ, str(video)]
    cases = {
        "read_clip, whole video": read,
        "read_clip, 5 s mid-video": read + middle,
        "read_clip, 5 s at the end": read + end,
        "classify, whole video": classify,
        "classify, 5 s mid-video": classify + ["--start", middle[0], "--end", middle[1]],
    }
    results = {}
    for name, command in cases.items():
        runs = [run(command, arguments.src.resolve(), arguments.rss_limit_gb) for _ in range(arguments.repeats)]
        finished = [r for r in runs if r["outcome"] == "ok"]
        results[name] = {"runs": runs}
        if finished:
            results[name] |= {
                "seconds": min(r["seconds"] for r in finished),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in finished),
            }
            print(f"{name:>26}: {results[name]['seconds']:.2f} s (best), peak RSS {results[name]['peak_rss_mb']} MB")
        else:
            print(f"{name:>26}: {runs[0]['outcome']}")
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(
        json.dumps(
            {
                "src": str(arguments.src.resolve()),
                "video": {"path": str(video), "minutes": arguments.minutes, "size": "640x360", "fps": FPS},
                "machine": machine_description(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
