"""Training throughput on this machine, each variant measured in one process so ratios are fair.

Variants (same model, data and batch size; samples/s over `--steps` steps after a warm-up step):
  demo        cached X-encoder tokens, frozen memoised MiniLM + trainable head, bf16 autocast,
              eager attention in the predictor
  sdpa        as demo, with transformers' SDPA attention (its default) in the predictor
  4_heads     as demo, with 4 attention heads of 32 in the predictor instead of 8 of 16
  fp32        as demo, without bf16 autocast
  y_x0.05     as demo, but MiniLM fine-tuned at LR x0.05 (the paper's recipe, `vljepa train`'s default)
  uncached    as demo, but every sample is decoded and encoded by the X-encoder at each step
Usage: python benchmarks/train_throughput.py --world runs/demo/world [--steps 30] [--out benchmarks/results/train_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from vljepa.config import load_train_config
from vljepa.data.transforms import preprocess_clip
from vljepa.data.video import read_clip
from vljepa.demo import DEMO_CONFIG, packaged_config
from vljepa.eval.report import machine_description
from vljepa.train.optim import build_optimizer
from vljepa.train.samples import MixtureSampler
from vljepa.train.trainer import Trainer


def measure(trainer: Trainer, steps: int, uncached: bool) -> float:
    config, stage = trainer.config, trainer.config.stages[1]
    model = trainer.model.train()
    optimizer = build_optimizer(model, stage, config)
    sampler = MixtureSampler(trainer.samples, stage.mixture, seed=0)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if config.bf16 else torch.autocast("cpu", enabled=False)
    start = None
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # the first step pays one-off costs (memoising texts, tokenising)
        batch = sampler.next_batch(stage.batch_size)
        if uncached:
            frames = [read_clip(s.clip.path, model.config.x_encoder.num_frames, s.clip.start, s.clip.end) for s in batch]
            tokens = model.x_encoder(torch.stack([preprocess_clip(f, model.config.x_encoder) for f in frames]))
        else:
            tokens = trainer.features.gather(batch, trainer.device)
        with autocast:
            out = model(tokens, [s.query for s in batch], [s.target for s in batch])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * stage.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, default=Path("runs/demo/world"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    base = [f"train_manifest={args.world / 'train.jsonl'}", "out_dir=/tmp/vljepa-throughput",
            f"cache_dir={args.world.parent / 'feature_cache'}"]
    variants = {"demo": ([], False), "sdpa": (["model.predictor.attention=sdpa"], False),
                "4_heads": (["model.predictor.num_heads=4"], False), "fp32": (["bf16=false"], False),
                "y_x0.05": (["model.y_encoder.lr_multiplier=0.05"], False), "uncached": ([], True)}
    results = {"machine": machine_description(), "steps": args.steps, "samples_per_s": {}}
    for name, (overrides, uncached) in variants.items():
        torch.manual_seed(0)
        trainer = Trainer(load_train_config(packaged_config(DEMO_CONFIG), base + overrides), progress=False)
        results["samples_per_s"][name] = round(measure(trainer, args.steps, uncached), 1)
        print(name, results["samples_per_s"][name], "samples/s", flush=True)
    rates = results["samples_per_s"]
    results["ratios"] = {"eager-attention speedup over sdpa": round(rates["demo"] / rates["sdpa"], 2),
                         "8-head cost over 4 heads": round(rates["4_heads"] / rates["demo"], 2),
                         "bf16 speedup": round(rates["demo"] / rates["fp32"], 2),
                         "frozen-text speedup over x0.05": round(rates["demo"] / rates["y_x0.05"], 2),
                         "feature-cache speedup": round(rates["demo"] / rates["uncached"], 2)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
