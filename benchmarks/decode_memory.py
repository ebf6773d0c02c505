"""Peak memory of classifying one 2-second clip against the clip's resolution: 360p, 1080p, 4K and 8K.

    python benchmarks/decode_memory.py --model runs/demo/model/final [--out benchmarks/results/decode_memory.json]

Each clip (2 s at 10 fps, H.264, a coloured square moving over noise, so that the encoder has detail to keep)
is written once into `--work`; then `vljepa classify CLIP --labels ...` runs in a new process per clip, which
prints its own peak resident memory (VmHWM) at its end. Reported per resolution: the peak and its ratio to
360p's, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vljepa.data.video import write_video
from vljepa.eval.report import machine_description

SIZES = {"360p": (640, 360), "1080p": (1920, 1080), "4K": (3840, 2160), "8K": (7680, 4320)}
FPS, SECONDS = 10, 2.0
MEASURE = (
    "import sys\nfrom pathlib import Path\nfrom vljepa.cli import app\n"
    "app(sys.argv[1:], standalone_mode=False)\n"
    "status = Path('/proc/self/status').read_text().splitlines()\n"
    "print(int(next(r for r in status if r.startswith('VmHWM:')).split()[1]) / 1024)\n"
)


def clip(path: Path, width: int, height: int) -> Path:
    if path.is_file():
        return path
    rng = np.random.default_rng(0)
    frames = []
    for t in range(int(FPS * SECONDS)):
        frame = rng.integers(0, 64, (height, width, 3), dtype=np.uint8)
        side, x = height // 4, int((0.2 + 0.03 * t) * width)
        frame[height // 3 : height // 3 + side, x : x + side] = (220, 40, 40)
        frames.append(frame)
    write_video(path, frames, fps=FPS, crf=28)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/demo/model/final"))
    parser.add_argument("--work", type=Path, default=Path("runs/decode_memory"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decode_memory.json"))
    arguments = parser.parse_args()
    arguments.work.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, (width, height) in SIZES.items():
        path = clip(arguments.work / f"{name}.mp4", width, height)
        command = ["classify", str(path), "-m", str(arguments.model), "--labels", "moving left,moving right"]
        began = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True, env=dict(os.environ)
        )
        rows[name] = {
            "size": f"{width}x{height}",
            "file_mb": path.stat().st_size / 1e6,
            "peak_rss_mb": float(output.stdout.split()[-1]),
            "seconds": time.perf_counter() - began,
        }
        print(name, rows[name], file=sys.stderr)
    for row in rows.values():
        row["ratio_to_360p"] = row["peak_rss_mb"] / rows["360p"]["peak_rss_mb"]
    results = {"machine": machine_description(), "model": str(arguments.model), "clips": rows}
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
