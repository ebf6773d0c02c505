"""`vljepa stream --live` on a real-time source: caption latency, dropped windows and memory over minutes.

    python benchmarks/live_stream.py --model runs/demo/model/final --video runs/demo/world/streams/stream_000.mp4

A child process (`benchmarks/live_source.py`) replays the video in real time as a 640x360, 30 fps MPEG-TS into
a file that grows as a recording does; this process captions it live (`caption_live`, the online segmenter, a
queue of 8 windows) while the file is written, `--seconds` long (default 300). Reported: the latency from the
arrival of the window that closes a segment to its caption (p50, p99, max), windows cut and dropped, and this
process's resident memory sampled every 5 s (the first and last minute's means: flat when nothing grows).
Writes `benchmarks/results/live_stream.json` (`--out`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vljepa.eval.report import machine_description
from vljepa.model import VLJepa
from vljepa.tasks.live_captioner import caption_live
from vljepa.tasks.stream_captioner import StreamConfig

SAMPLE_SECONDS = 5.0


def resident_mb() -> float:
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/demo/model/final"))
    parser.add_argument("--video", type=Path, default=Path("runs/demo/world/streams/stream_000.mp4"))
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--work", type=Path, default=Path("runs/live_stream"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/live_stream.json"))
    arguments = parser.parse_args()
    arguments.work.mkdir(parents=True, exist_ok=True)
    target = arguments.work / "live.ts"
    target.unlink(missing_ok=True)
    model = VLJepa.from_pretrained(arguments.model, bf16=False)
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("live_source.py")), str(arguments.video), "--out", str(target)]
        + ["--fps", "30", "--size", "640x360", "--seconds", str(arguments.seconds)]
    )
    while not (target.exists() and target.stat().st_size):
        time.sleep(0.05)
    memory: list[tuple[float, float]] = []
    began = time.monotonic()
    finished = threading.Event()

    def sample() -> None:
        while not finished.wait(SAMPLE_SECONDS):
            memory.append((time.monotonic() - began, resident_mb()))

    threading.Thread(target=sample, daemon=True).start()
    config = StreamConfig(segmenter="online")
    outcome = caption_live(model, str(target), config, lambda c: print(f"[{c.start:7.2f}-{c.end:7.2f} s] {c.text}"))
    finished.set()
    writer.wait()
    latencies = np.array(outcome.latencies)
    first = [mb for at, mb in memory if at <= 60]
    last = [mb for at, mb in memory if at >= memory[-1][0] - 60]
    results = {
        "machine": machine_description(),
        "model": str(arguments.model),
        "source": {"video": str(arguments.video), "seconds": arguments.seconds, "fps": 30, "size": "640x360"},
        "config": {"window_seconds": config.window_seconds, "stride_seconds": config.stride_seconds, "queue": 8},
        "windows": outcome.windows,
        "dropped": outcome.dropped,
        "captions": len(outcome.stream.captions),
        "latency_s": {
            "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)),
            "max": float(latencies.max()),
            "count": len(latencies),
        },
        "rss_mb": {"first_minute": float(np.mean(first)), "last_minute": float(np.mean(last)), "samples": memory},
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "rss_mb"} | {"rss": results["rss_mb"]["last_minute"]}))


if __name__ == "__main__":
    main()
