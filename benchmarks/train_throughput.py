"""Training throughput on this machine, each variant measured in one process so ratios are fair.

Every variant is the demo's recipe (`world-tiny-demo.yaml`: 4 frames per clip, 32 cached X-encoder tokens,
frozen memoised MiniLM + trainable head, eager attention, 8 heads, MLP 512, `compile: auto`) in fp32 unless
it says otherwise; stage-2 mixture batches; samples/s over `--steps` steps after warm-up steps (whose time,
a compile's included, is reported apart); FLOPs per sample (forward and backward, counted by
`torch.utils.flop_counter` on one eager step) and the GFLOP/s they imply:
  demo            the demo's recipe in fp32 (its predictor compiled where `compile: auto` finds it works)
  eager           the same, never compiled; the variants below are changes to this one
  8_frames        8 frames per clip (64 visual tokens), the X-encoder's default
  bf16            with bf16 autocast (measured only where bf16=auto chooses it: native bf16)
  mlp256          predictor MLP 256 wide instead of 512
  4_heads         4 attention heads of 32 instead of 8 of 16
  sdpa            transformers' SDPA attention (its default) in the predictor
  y_x0.05         MiniLM fine-tuned at LR x0.05 (the paper's recipe, `vljepa train`'s default)
  uncached        every sample decoded and encoded by the X-encoder at each step
Usage: python benchmarks/train_throughput.py --world runs/demo/world [--steps 30] [--out benchmarks/results/train_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers.utils import logging as hf_logging

from vljepa.config import load_train_config
from vljepa.core.precision import resolve_precision
from vljepa.data.video import read_clip
from vljepa.demo import DEMO_CONFIG, packaged_config
from vljepa.eval.report import machine_description
from vljepa.train.samples import MixtureSampler
from vljepa.train.trainer import Trainer, build_optimizer


def measure(trainer: Trainer, steps: int, uncached: bool) -> tuple[float, float, float]:
    """(samples/s over `steps` timed steps, FLOPs per sample of one step, seconds of the warm-up steps)."""
    config, stage = trainer.config, trainer.config.stages[1]
    model = trainer.model.train()
    optimizer = build_optimizer(model, stage, config)
    sampler = MixtureSampler(trainer.samples, stage.mixture, seed=0)

    def step() -> None:
        batch = sampler.next_batch(stage.batch_size)
        if uncached:
            frames = [
                read_clip(s.clip.path, model.config.x_encoder.num_frames, s.clip.start, s.clip.end) for s in batch
            ]
            tokens = model.x_encoder(torch.stack([model.x_encoder.preprocess(f) for f in frames]))
        else:
            tokens = trainer.features.gather(batch, trainer.device)
        with trainer.precision.autocast("cpu"):
            out = model(tokens, [s.query for s in batch], [s.target for s in batch])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with torch.compiler.set_stance("force_eager"):
        step()  # the first step pays one-off costs (tokenising)
        with FlopCounterMode(display=False) as counter:
            step()
    start = time.perf_counter()
    for _ in range(5):
        step()  # a compiled predictor compiles here, again for new query lengths
    warm_up = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (
        steps * stage.batch_size / (time.perf_counter() - start),
        counter.get_total_flops() / stage.batch_size,
        warm_up,
    )


EAGER = "compile=false"
VARIANTS = {
    "demo": ([], False),
    "eager": ([EAGER], False),
    "8_frames": ([EAGER, "model.x_encoder.num_frames=8"], False),
    "bf16": ([EAGER, "bf16=true"], False),
    "mlp256": ([EAGER, "model.predictor.intermediate_size=256"], False),
    "4_heads": ([EAGER, "model.predictor.num_heads=4"], False),
    "sdpa": ([EAGER, "model.predictor.attention=sdpa"], False),
    "y_x0.05": ([EAGER, "model.y_encoder.lr_multiplier=0.05"], False),
    "uncached": ([EAGER], True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, default=Path("runs/demo/world"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    base = [
        f"train_manifest={args.world / 'train.jsonl'}",
        f"cache_dir={args.world.parent / 'feature_cache'}",
        "bf16=false",
    ]
    results = {
        "machine": machine_description(),
        "steps": args.steps,
        "samples_per_s": {},
        "mflop_per_sample": {},
        "achieved_gflop_per_s": {},
        "warm-up s (5 steps)": {},
        "compiled": {},
    }
    for name, (overrides, uncached) in VARIANTS.items():
        if name == "bf16" and not resolve_precision("auto", "cpu").bf16:
            results["samples_per_s"][name] = None  # emulated bf16 would take about 100x longer
            continue
        torch.manual_seed(0)
        run = [f"out_dir=/tmp/vljepa-throughput/{name}"]  # a folder each: a trainer holds its folder's lock
        trainer = Trainer(load_train_config(packaged_config(DEMO_CONFIG), base + run + overrides), progress=False)
        rate, flops, warm_up = measure(trainer, args.steps, uncached)
        results["warm-up s (5 steps)"][name] = round(warm_up, 1)
        results["compiled"][name] = trainer.compilation.enabled
        results["samples_per_s"][name] = round(rate, 1)
        results["mflop_per_sample"][name] = round(flops / 1e6, 1)
        results["achieved_gflop_per_s"][name] = round(rate * flops / 1e9, 1)
        print(
            f"{name}: {rate:.0f} samples/s, {flops / 1e6:.0f} MFLOP/sample, {rate * flops / 1e9:.0f} GFLOP/s",
            flush=True,
        )
    rates = results["samples_per_s"]
    results["ratios to eager"] = {
        name: round(rates[name] / rates["eager"], 2) for name in rates if rates[name] and name != "eager"
    }
    results["demo over 8_frames"] = round(rates["demo"] / rates["8_frames"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
