"""The input pipeline of training: shards with the encoder online against the cached in-RAM tokens.

`throughput`: the demo's model and stage-2 batches (`world-tiny-demo.yaml`, fp32, eager), trained for `--steps` timed
steps after `--warm-up` steps (the loader's workers start then), once per variant, each in this process:
  cached  `features=cache`: every clip encoded once before training (its time is reported apart; the demo's
          feature cache beside the world, `<world>/../feature_cache`, is reused), a step gathers its tokens
          from the table in memory;
  online  `features=online` from the world's training clips written as shards: `--workers` loader processes
          read and decode the clips, the X-encoder runs inside the step.
Both variants memoise every training target of the frozen text model before timing, so only the visual
input differs. Reported: samples/s, and the share of step time spent waiting for data (blocked in the
loader's `next`; for `cached`, drawing the batch from the sampler).
`memory`: peak memory of `vljepa train` from shards (`world-tiny.yaml`: the tiny model, MiniLM fine-tuned at
LR x0.05; online, `--workers` workers, `--steps` steps per stage) at each `--clips` size. The world's training clips are written as shards once; a larger size repeats those shards
(links under other names), so 20,000 samples are 2,000 distinct clips read ten times per epoch: the loader's
memory does not depend on whether clips repeat. Reported: the main process's peak resident set (VmHWM)
and the peak over time of the proportional set size (Pss) summed over the main process and its workers,
read from /proc every 0.1 s.

Usage:
  python benchmarks/input_pipeline.py throughput --world runs/demo/world [--steps 30] [--workers 2]
  python benchmarks/input_pipeline.py memory --world runs/demo/world --clips 2000 20000 [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from vljepa.config import load_train_config
from vljepa.data.manifest import load_manifest
from vljepa.data.shards import shard_list, write_shards
from vljepa.demo import DEMO_CONFIG, packaged_config
from vljepa.eval.report import machine_description
from vljepa.substrate.optim import apply_gradients
from vljepa.train.trainer import Trainer, batch_backward, build_optimizer

MEMORY_CONFIG = "world-tiny.yaml"


def world_shards(world: Path, work: Path) -> Path:
    """The world's training manifest as shards (written once)."""
    out = work / "shards"
    if not list(out.glob("*.tar")):
        write_shards(world / "train.jsonl", out, 64 * 10**6)
    return out


def measure(trainer: Trainer, steps: int, warm_up: int) -> dict:
    stage_index = 1
    stage = trainer.config.stages[stage_index]
    model = trainer.model.train()
    optimizer = build_optimizer(model, stage, trainer.config)
    batches = trainer.data.stage_batches(stage_index)

    def autocast():
        return trainer.precision.autocast(trainer.device.type)

    waiting = total = 0.0
    for step in range(warm_up + steps):
        start = time.perf_counter()
        batch = batches.next_batch()
        waited = time.perf_counter() - start
        queries, targets = [s.query for s in batch.samples], [s.target for s in batch.samples]
        batch_backward(model, batch.visual_tokens, queries, targets, stage.micro_batch_size, autocast)
        apply_gradients(model.parameters(), optimizer, None, trainer.config.grad_clip)
        if step >= warm_up:
            waiting += waited
            total += time.perf_counter() - start
    return {
        "samples_per_s": round(steps * stage.batch_size / total, 1),
        "data_wait_fraction": round(waiting / total, 3),
        "step_s": round(total / steps, 4),
    }


def throughput(args: argparse.Namespace) -> dict:
    shards = world_shards(args.world, args.work)
    base = [
        f"out_dir={args.work / 'run'}",
        f"cache_dir={args.world.parent / 'feature_cache'}",
        "bf16=false",
        "compile=false",  # the input side is measured; a compile would only add its warm-up
    ]
    if args.batch_size:
        base.append(f"stages.1.batch_size={args.batch_size}")
    targets = sorted(
        {t for r in load_manifest(args.world / "train.jsonl") for t in (r.caption, r.answer, r.label) if t}
    )
    variants = {
        "cached": [f"train_manifest={args.world / 'train.jsonl'}", "features=cache"],
        "online": [f"train_manifest={shards}", "features=online", f"num_workers={args.workers}"],
    }
    results = {"machine": machine_description(), "steps": args.steps, "workers": args.workers, "variants": {}}
    for name, overrides in variants.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        trainer = Trainer(load_train_config(packaged_config(DEMO_CONFIG), base + overrides), progress=False)
        trainer.model.y_encoder.memoise(targets)
        prepared = time.perf_counter() - start
        results["variants"][name] = {**measure(trainer, args.steps, args.warm_up), "preparation_s": round(prepared, 1)}
        print(name, results["variants"][name], flush=True)
    return results


def tree_memory_kb(root: int) -> tuple[int, int]:
    """(the root process's peak RSS so far (VmHWM), the Pss summed over it and its descendants), in kB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))

    def field(path: str, name: str) -> int:
        try:
            return next(int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.startswith(name))
        except (OSError, StopIteration):
            return 0

    pss, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        pss += field(f"/proc/{pid}/smaps_rollup", "Pss:")
    return field(f"/proc/{root}/status", "VmHWM:"), pss


def dataset_of(shards: Path, clips: int, per_copy: int, work: Path) -> Path:
    """A folder of shards holding `clips` samples: the world's shards, repeated under other names."""
    out = work / f"shards_{clips}"
    out.mkdir(parents=True, exist_ok=True)
    copies = math.ceil(clips / per_copy)
    for copy in range(copies):
        for shard in shard_list(shards):
            link = out / f"{copy:03d}_{shard.name}"
            if not link.exists():
                os.link(shard, link)
    return out


def memory(args: argparse.Namespace) -> dict:
    shards = world_shards(args.world, args.work)
    per_copy = len({r.clip.path for r in load_manifest(args.world / "train.jsonl")})
    results = {"machine": machine_description(), "steps_per_stage": args.steps, "workers": args.workers, "runs": {}}
    for clips in args.clips:
        data = dataset_of(shards, clips, per_copy, args.work)
        command = [
            str(Path(sys.executable).with_name("vljepa")),
            "train",
            "-c",
            str(packaged_config(MEMORY_CONFIG)),
            f"train_manifest={data}",
            f"out_dir={args.work / f'memory_run_{clips}'}",
            f"cache_dir={args.work / 'feature_cache'}",
            f"num_workers={args.workers}",
            f"stages.0.steps={args.steps}",
            f"stages.1.steps={args.steps}",
            "save_every=1000000",
            "bf16=false",
        ]
        start, peak_rss, peak_pss = time.perf_counter(), 0, 0
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        while process.poll() is None:
            rss, pss = tree_memory_kb(process.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.1)
        if process.returncode:
            raise RuntimeError(f"{' '.join(command)} failed with code {process.returncode}")
        samples = per_copy * math.ceil(clips / per_copy)
        results["runs"][str(clips)] = {
            "samples": samples,
            "main_peak_rss_mb": round(peak_rss / 1024),
            "peak_pss_main_and_workers_mb": round(peak_pss / 1024),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(clips, results["runs"][str(clips)], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("measurement", choices=["throughput", "memory"])
    parser.add_argument("--world", type=Path, default=Path("runs/demo/world"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/vljepa-input-pipeline"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None, help="stage 2's batch size (default: the config's)")
    parser.add_argument("--clips", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    results = throughput(args) if args.measurement == "throughput" else memory(args)
    out = args.out or Path(f"benchmarks/results/input_pipeline_{args.measurement}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
