"""Inference cost per answer, VL-JEPA vs the token VLM, on the models a comparison run left behind.

`benchmarks/compare.py` measures this already at the end of its run (the `inference_cost` section of
its JSON); this script re-measures it alone, e.g. on another machine or with other settings
(`baselines/cost.py` says what is measured and how). It reads the compare YAML for the world, the
feature cache and the `cost:` settings, and the last checkpoint of each model in the work directory.

    python benchmarks/inference_cost.py [--config benchmarks/compare.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compare import CompareConfig
from transformers.utils import logging as hf_logging

from baselines.cost import inference_costs
from baselines.token_vlm import TokenVLM
from vljepa.config import load_config
from vljepa.eval.report import machine_description
from vljepa.model import VLJepa


def last_checkpoint(directory: Path) -> Path:
    steps = sorted(directory.glob("step_*"))
    if not steps:
        raise FileNotFoundError(f"{directory}: no step_* checkpoints; run benchmarks/compare.py first")
    return steps[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("compare.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/inference_cost.json"))
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the YAML, e.g. cost.clips=32")
    arguments = parser.parse_args()
    hf_logging.disable_progress_bar()
    config = load_config(CompareConfig, arguments.config, arguments.overrides)
    work = Path(config.work_dir)
    vljepa_dir, token_vlm_dir = last_checkpoint(work / "vljepa"), last_checkpoint(work / "token_vlm")
    costs = inference_costs(
        VLJepa.from_pretrained(vljepa_dir),
        TokenVLM.from_pretrained(token_vlm_dir),
        config.world,
        config.cache_dir,
        config.cost,
        config.eval_batch_size,
    )
    results = {"machine": machine_description(), "vljepa": str(vljepa_dir), "token_vlm": str(token_vlm_dir), **costs}
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
