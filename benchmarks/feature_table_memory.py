"""Peak memory of loading a manifest's training features (`load_samples` -> `FeatureTable`) as the number of
cached clips grows.

For each `--clips` count, a fresh interpreter running the checkout at `--src` fills a feature cache with
fake tokens (random float16, `--tokens` x `--dim` per clip, written straight into the cache through its
own shard writer, no encoder run: the figure is about holding features, not computing them) for a
manifest of that many clips (windows of one dummy file), then another fresh interpreter loads the
manifest's samples and features and gathers one batch. Reported: that interpreter's peak RSS while
loading, above its RSS before (the peak is reset through Linux's /proc/self/clear_refs). Run it once
per checkout to compare, e.g. with the table that stacks every clip's tokens at /work/main:

    python benchmarks/feature_table_memory.py --out benchmarks/results/feature_table_memory_new.json
    python benchmarks/feature_table_memory.py --src /work/main/src --out benchmarks/results/feature_table_memory_old.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FILL = """
import json, sys, torch
from pathlib import Path
from vljepa.config import XEncoderConfig
from vljepa.data.feature_cache import FeatureCache, clip_key
from vljepa.data.manifest import load_manifest
from vljepa.model.x_encoder import XEncoder

work, tokens, dim = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cache = FeatureCache(work / "cache", XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2)))
keys = [clip_key(r.clip) for r in load_manifest(work / "train.jsonl")]
generator = torch.Generator().manual_seed(0)
for start in range(0, len(keys), 2000):  # shards of 2,000 clips
    part = keys[start : start + 2000]
    cache._add_shard(part, torch.randn(len(part), tokens, dim, generator=generator).half())
"""

LOAD = """
import json, sys, torch
from pathlib import Path
from vljepa.config import XEncoderConfig
from vljepa.data.feature_cache import FeatureCache
from vljepa.train.dataset import load_samples
from vljepa.model.x_encoder import XEncoder

def kilobytes(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":"))

work = Path(sys.argv[1])
cache = FeatureCache(work / "cache", XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2)))
Path("/proc/self/clear_refs").write_text("5")
before = kilobytes("VmRSS")
by_kind, table, skipped = load_samples(str(work / "train.jsonl"), cache, "what happens?", progress=False)
batch = table.gather(by_kind["caption"][:64], torch.device("cpu"))
assert skipped == 0 and batch.shape[0] == 64
print(json.dumps({"rss_before_mb": before / 1024, "peak_growth_mb": (kilobytes("VmHWM") - before) / 1024}))
"""


def run(script: str, src: Path, *arguments: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", script, *arguments],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def measure(src: Path, clips: int, tokens: int, dim: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "clip.mp4").write_bytes(b"not decoded: every clip's tokens are in the cache")
        records = [{"video": "clip.mp4", "start": i, "end": i + 1, "caption": f"clip {i}"} for i in range(clips)]
        (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        run(FILL, src, str(work), str(tokens), str(dim))
        return json.loads(run(LOAD, src, str(work)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--clips", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/feature_table_memory.json"))
    arguments = parser.parse_args()
    results = {}
    for clips in arguments.clips:
        results[str(clips)] = measure(arguments.src.resolve(), clips, arguments.tokens, arguments.dim)
        size = clips * arguments.tokens * arguments.dim * 2 / 2**20
        print(f"{clips:>7} clips ({size:.0f} MB of tokens): peak RSS +{results[str(clips)]['peak_growth_mb']:.0f} MB")
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(
        json.dumps(
            {
                "src": str(arguments.src.resolve()),
                "tokens_per_clip": [arguments.tokens, arguments.dim],
                "dtype": "float16",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
