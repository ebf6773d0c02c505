"""Training throughput on this machine, each variant measured in one process so ratios are fair.

Every variant is the demo's recipe (`world-tiny-demo.yaml`: cached X-encoder tokens, frozen memoised
MiniLM + trainable head, eager attention) in fp32 unless it says otherwise; stage-2 mixture batches,
samples/s over `--steps` steps after a warm-up step, FLOPs per sample (forward and backward, counted by
`torch.utils.flop_counter` on one step) and the GFLOP/s they imply:
  demo            the demo's recipe: 4 frames per clip (32 visual tokens), predictor MLP 256 wide
  8_frames_mlp512 the recipe before: 8 frames per clip (64 visual tokens), predictor MLP 512 wide
  8_frames        8 frames, MLP 256
  mlp512          4 frames, MLP 512
  bf16            as demo, with bf16 autocast (measured only where the CPU has bf16 instructions)
  sdpa            as demo, with transformers' SDPA attention (its default) in the predictor
  y_x0.05         as demo, but MiniLM fine-tuned at LR x0.05 (the paper's recipe, `vljepa train`'s default)
  uncached        as demo, but every sample is decoded and encoded by the X-encoder at each step
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
from vljepa.data.transforms import preprocess_clip
from vljepa.data.video import read_clip
from vljepa.demo import DEMO_CONFIG, packaged_config
from vljepa.eval.report import machine_description
from vljepa.precision import cpu_bf16_units
from vljepa.train.optim import build_optimizer
from vljepa.train.samples import MixtureSampler
from vljepa.train.trainer import Trainer


def measure(trainer: Trainer, steps: int, uncached: bool) -> tuple[float, float]:
    """(samples/s over `steps` timed steps, FLOPs per sample of one step)."""
    config, stage = trainer.config, trainer.config.stages[1]
    model = trainer.model.train()
    optimizer = build_optimizer(model, stage, config)
    sampler = MixtureSampler(trainer.samples, stage.mixture, seed=0)

    def step() -> None:
        batch = sampler.next_batch(stage.batch_size)
        if uncached:
            frames = [read_clip(s.clip.path, model.config.x_encoder.num_frames, s.clip.start, s.clip.end) for s in batch]
            tokens = model.x_encoder(torch.stack([preprocess_clip(f, model.config.x_encoder) for f in frames]))
        else:
            tokens = trainer.features.gather(batch, trainer.device)
        with trainer.precision.autocast("cpu"):
            out = model(tokens, [s.query for s in batch], [s.target for s in batch])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # the first step pays one-off costs (memoising texts, tokenising)
    with FlopCounterMode(display=False) as counter:
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * stage.batch_size / (time.perf_counter() - start), counter.get_total_flops() / stage.batch_size


VARIANTS = {"demo": ([], False), "8_frames_mlp512": (["model.x_encoder.num_frames=8", "model.predictor.intermediate_size=512"], False),
            "8_frames": (["model.x_encoder.num_frames=8"], False), "mlp512": (["model.predictor.intermediate_size=512"], False),
            "bf16": (["bf16=true"], False), "sdpa": (["model.predictor.attention=sdpa"], False),
            "y_x0.05": (["model.y_encoder.lr_multiplier=0.05"], False), "uncached": ([], True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, default=Path("runs/demo/world"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    base = [f"train_manifest={args.world / 'train.jsonl'}", "out_dir=/tmp/vljepa-throughput",
            f"cache_dir={args.world.parent / 'feature_cache'}", "bf16=false"]
    results = {"machine": machine_description(), "steps": args.steps, "samples_per_s": {}, "mflop_per_sample": {},
               "achieved_gflop_per_s": {}}
    for name, (overrides, uncached) in VARIANTS.items():
        if name == "bf16" and not cpu_bf16_units():
            results["samples_per_s"][name] = None  # emulated bf16 would take about 100x longer
            continue
        torch.manual_seed(0)
        trainer = Trainer(load_train_config(packaged_config(DEMO_CONFIG), base + overrides), progress=False)
        rate, flops = measure(trainer, args.steps, uncached)
        results["samples_per_s"][name] = round(rate, 1)
        results["mflop_per_sample"][name] = round(flops / 1e6, 1)
        results["achieved_gflop_per_s"][name] = round(rate * flops / 1e9, 1)
        print(f"{name}: {rate:.0f} samples/s, {flops / 1e6:.0f} MFLOP/sample, {rate * flops / 1e9:.0f} GFLOP/s", flush=True)
    rates = results["samples_per_s"]
    results["ratios"] = {"demo over the recipe before (8 frames, MLP 512)": round(rates["demo"] / rates["8_frames_mlp512"], 2),
                         "4 frames over 8": round(rates["demo"] / rates["8_frames"], 2),
                         "MLP 256 over 512": round(rates["demo"] / rates["mlp512"], 2),
                         "eager-attention speedup over sdpa": round(rates["demo"] / rates["sdpa"], 2),
                         "frozen-text speedup over x0.05": round(rates["demo"] / rates["y_x0.05"], 2),
                         "feature-cache speedup": round(rates["demo"] / rates["uncached"], 2)}
    if rates["bf16"]:
        results["ratios"]["bf16 speedup"] = round(rates["bf16"] / rates["demo"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
