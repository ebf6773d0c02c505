"""The results of the frozen-encoder probe table of BENCHMARKS.md, collected from a sweep's folder.

`collect` reads `<sweep>/<variant>/probe.json` (written by `encoder_pretrain_sweep.sh`), each pretrained variant's
`encoder_pretrain_config.json` and `metrics.jsonl`, and writes one results file; `benchmarks/render_docs.py`
renders BENCHMARKS.md's table from it (section `encoder_probes`).
Usage: python benchmarks/encoder_probe_table.py collect runs/encoder-sweep benchmarks/results/encoder_probes.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vljepa.eval.report import machine_description

RANDOM_STARTS = {  # the sweep's random variants (encoder_pretrain_sweep.sh): no pretraining config to read
    "random": "seeded random, 32 px / patch 8 (the demo's)",
    "random_p4": "seeded random, 32 px / patch 4 (the patch-4 variants' start)",
}


DEFAULT_EMA = [0.996, 1.0]  # EncoderPretrainConfig's target momentum, left out of the descriptions


def describe(name: str, config: dict | None) -> str:
    """A variant's pretraining in a few words, from its saved config (None: a random start)."""
    if config is None:
        return RANDOM_STARTS[name]
    x = config["x_encoder"]
    spans = "one of two time steps" if config["masks"][0]["temporal_scale"][1] < 1 else "the whole clip"
    weighting = config.get("content_weighting", 0)
    loss = f", loss weighted by pixel spread ({weighting:g})" if weighting else ""
    ema = config.get("ema", DEFAULT_EMA)
    target = "" if list(ema) == DEFAULT_EMA else f", target EMA {ema[0]:g} to {ema[1]:g}"
    return (
        f"V-JEPA, {x['image_size']} px / patch {x['patch_size']}, {config['steps']} steps of {config['batch_size']} "
        f"from {config['world_clips']:,} world clips, blocks hide {spans}{loss}{target}"
    )


def collect(sweep: Path) -> dict:
    variants = {}
    for folder in sorted(p for p in sweep.iterdir() if (p / "probe.json").is_file()):
        probe = json.loads((folder / "probe.json").read_text())
        config_file = folder / "encoder_pretrain_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else None
        final_loss = None
        if config is not None:
            final_loss = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])["loss"]
        variants[folder.name] = {
            "description": describe(folder.name, config),
            "pretraining": config,
            "final_loss": final_loss,
            "probes": next(iter(probe.values())),  # one encoder per probe file
        }
    return {"machine": machine_description(), "variants": variants}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    collecting = commands.add_parser("collect")
    collecting.add_argument("sweep", type=Path)
    collecting.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.write_text(json.dumps(collect(args.sweep), indent=2) + "\n")


if __name__ == "__main__":
    main()
