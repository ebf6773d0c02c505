"""The planner against measured memory, and the paper's stages planned on common GPUs.

  python benchmarks/plan_memory.py validate   # traced vs measured peak of real CPU steps -> results/plan_memory.json
  python benchmarks/plan_memory.py profiles   # trace pass 2 of every registered model under the paper's stages
                                              #   -> src/vljepa/plan/traced_profiles.json (read by `vljepa plan`)
  python benchmarks/plan_memory.py paper      # vljepa-paper on 1, 8 and 64 H100-80GB and one 24 GB card, from the
                                              #   package's profiles, and once traced -> results/plan_paper.json
Then `python benchmarks/render_docs.py` renders BENCHMARKS.md's and docs/paper-scale.md's tables from them.
`validate` measures fp32 steps of the demo's model (`world-tiny`: its MiniLM Y-encoder trains at LR x0.05)
at several frame counts, micro-batches, batches and with and without checkpointing, on this CPU, with
PyTorch's memory profiler (`vljepa.plan.measure`), and traces the same steps on fake tensors
(`vljepa.plan.trace`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch

from vljepa.config import ModelConfig
from vljepa.core.sizes import parse_size
from vljepa.plan.measure import measure_step
from vljepa.plan.planner import Hardware, Lengths, Planner, plan_recipe, predicted_step
from vljepa.plan.profile_table import KeptTraces, write_table
from vljepa.plan.recipes import resolve
from vljepa.plan.report import assumptions, plan_json
from vljepa.plan.trace import StepShape, TracedModel
from vljepa.registry import Architectures, list_models

RESULTS = Path(__file__).resolve().parent / "results"
TEXT_TOKENS = 32
# (frames, micro-batch, batch, checkpointing): one and several chunks, short and long clips, both checkpointings
STEPS = [
    (4, 64, 64, False),
    (4, 32, 128, False),
    (8, 64, 128, False),
    (8, 256, 256, True),
    (16, 32, 64, False),
    (16, 128, 256, True),
    (16, 64, 64, False),
    (8, 8, 128, False),  # AdamW's step holds more than the passes
]
GPUS = [  # (label, memory per GPU, GPUs per node, nodes)
    ("1 x H100-80GB", "80GB", 1, 1),
    ("8 x H100-80GB", "80GB", 8, 1),
    ("64 x H100-80GB", "80GB", 8, 8),
    ("1 x 24 GB", "24GB", 1, 1),
]


def machine() -> str:
    """`2-core AMD EPYC, torch 2.13.0+cpu, capability AVX2`: what the CPU figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
    ]
    cpu = names[0] if names else platform.machine()
    return (
        f"{os.cpu_count()}-core {cpu}, torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}"
    )


def validate() -> dict:
    base = ModelConfig()
    base = dataclasses.replace(base, y_encoder=dataclasses.replace(base.y_encoder, lr_multiplier=0.05))
    rows = []
    for frames, micro_batch, batch, checkpointing in STEPS:
        config = dataclasses.replace(base, x_encoder=dataclasses.replace(base.x_encoder, num_frames=frames))
        started = time.perf_counter()
        shape = StepShape(frames, batch, batch, 0, TEXT_TOKENS, checkpointing, bf16=False, online_features=False)
        weights, predicted = predicted_step(TracedModel(config, Architectures()), shape, micro_batch, False)
        traced_s = time.perf_counter() - started
        measured = measure_step(config, micro_batch, batch, TEXT_TOKENS, checkpointing)
        held = weights.frozen + weights.trained + weights.adamw_moments
        rows.append(
            {
                "frames": frames,
                "micro_batch": micro_batch,
                "batch": batch,
                "checkpointing": checkpointing,
                "predicted_step": predicted,
                "measured_step": measured.step_peak,
                "predicted_total": held + predicted,
                "measured_total": measured.total,
                "trace_seconds": traced_s,
            }
        )
        print(rows[-1], flush=True)
    return {
        "command": "python benchmarks/plan_memory.py validate",
        "machine": machine(),
        "model": "world-tiny, fp32, Y-encoder at LR x0.05",
        "text_tokens": TEXT_TOKENS,
        "steps": rows,
    }


def profiles() -> Path:
    """Pass 2 of every registered model under the paper's stages, with and without checkpointing, bf16 and fp32, and
    each stage's forward FLOPs, all traced afresh: the package's table holds these and nothing else."""
    kept = KeptTraces()
    for name in list_models():
        spec, configs = resolve(name)
        for bf16 in (True, False):
            planner = Planner(spec, Hardware(parse_size("80GB", "memory"), 1), bf16=bf16, known=kept)
            for config in configs:
                for stage in config.stages:
                    planner.flops(planner.forward_shape(stage, config))
                    for checkpointing in (False, True):
                        shape = planner.stage_shape(stage, config)
                        planner.profile(dataclasses.replace(shape, checkpointing=checkpointing))
            kept.update(planner.traced)
            traced = len(planner.traced.profiles) + len(planner.traced.flops)
            print(name, "bf16" if bf16 else "fp32", f"{traced} traced", flush=True)
    return write_table(kept)


def timed_plan(spec, configs, hardware: Hardware, known=None) -> tuple[list, float]:
    started = time.perf_counter()
    stages = plan_recipe(spec, configs, hardware, known=known)
    return stages, time.perf_counter() - started


def paper() -> dict:
    spec, configs = resolve("vljepa-paper")
    plans = {}
    for label, memory, gpus, nodes in GPUS:
        hardware = Hardware(parse_size(memory, "memory"), gpus, nodes)
        stages, seconds = timed_plan(spec, configs, hardware)
        plans[label] = {**plan_json(stages, assumptions(hardware, Lengths(), bf16=True)), "seconds": seconds}
        print(label, f"{seconds:.1f} s", flush=True)
    label, memory, gpus, nodes = GPUS[1]
    hardware = Hardware(parse_size(memory, "memory"), gpus, nodes)
    traced, seconds = timed_plan(spec, configs, hardware, known=KeptTraces())
    if plan_json(traced, [])["stages"] != plans[label]["stages"]:
        raise AssertionError("the plan from traced profiles differs from the plan from the package's table")
    return {
        "command": "python benchmarks/plan_memory.py paper",
        "machine": machine(),
        "plans": plans,
        "traced": {"label": label, "seconds": seconds},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["validate", "profiles", "paper"])
    what = parser.parse_args().what
    if what == "profiles":
        print(f"wrote {profiles()}")
        return
    data = validate() if what == "validate" else paper()
    out = RESULTS / ("plan_memory.json" if what == "validate" else "plan_paper.json")
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
