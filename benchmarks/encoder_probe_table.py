"""The frozen-encoder probe table of BENCHMARKS.md, collected from a sweep's folder and rendered from its results.

`collect` reads `<sweep>/<variant>/probe.json` (written by `encoder_pretrain_sweep.sh`), each pretrained variant's
`encoder_pretrain_config.json` and `metrics.jsonl`, and writes one results file; `render` prints the Markdown
table that BENCHMARKS.md holds between `<!-- encoder_probes -->` markers (a test checks the two agree).
Usage: python benchmarks/encoder_probe_table.py collect runs/encoder-sweep benchmarks/results/encoder_probes.json
       python benchmarks/encoder_probe_table.py render benchmarks/results/encoder_probes.json [--into BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vljepa.eval.report import machine_description

TASKS = ("shape", "colour", "binding", "count", "direction", "action")
PROBES = ("attentive", "linear")
MARKER = "<!-- encoder_probes -->"


def describe(config: dict | None) -> str:
    """A variant's pretraining in a few words, from its saved config (None: the random start)."""
    if config is None:
        return "seeded random (the demo's)"
    x = config["x_encoder"]
    spans = "one of two time steps" if config["masks"][0]["temporal_scale"][1] < 1 else "the whole clip"
    return (
        f"V-JEPA, {x['image_size']} px / patch {x['patch_size']}, {config['steps']} steps of {config['batch_size']} "
        f"from {config['world_clips']:,} world clips, blocks hide {spans}"
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
            "description": describe(config),
            "pretraining": config,
            "final_loss": final_loss,
            "probes": next(iter(probe.values())),  # one encoder per probe file
        }
    return {"machine": machine_description(), "variants": variants}


def cell(result: dict | None) -> str:
    if result is None:
        return "n/a"
    spread = f" +- {100 * result['std']:.1f}" if len(result["per_seed"]) > 1 else ""
    return f"{100 * result['accuracy']:.1f}{spread}"


def render(results: dict) -> str:
    variants = results["variants"]
    tasks = [t for t in TASKS if any(t in v["probes"][p] for v in variants.values() for p in PROBES)]
    chance = {
        t: next(v["probes"][p][t]["chance"] for v in variants.values() for p in PROBES if t in v["probes"][p])
        for t in tasks
    }
    seeds = sorted({len(r["per_seed"]) for v in variants.values() for p in PROBES for r in v["probes"][p].values()})
    lines = [
        f"Machine: {results['machine']}. Probes fitted with {' or '.join(map(str, seeds))} seed(s) each "
        "(mean +- std where more than one); test accuracy %.",
        "",
        "| encoder | probe | " + " | ".join(tasks) + " |",
        "|---|---|" + "---|" * len(tasks),
        "| chance (most frequent test class) | | " + " | ".join(f"{100 * chance[t]:.1f}" for t in tasks) + " |",
    ]
    for name, variant in variants.items():
        for probe in PROBES:
            by_task = variant["probes"][probe]
            row = " | ".join(cell(by_task.get(t)) for t in tasks)
            lines.append(f"| `{name}`: {variant['description']} | {probe} | {row} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    collecting = commands.add_parser("collect")
    collecting.add_argument("sweep", type=Path)
    collecting.add_argument("out", type=Path)
    rendering = commands.add_parser("render")
    rendering.add_argument("results", type=Path)
    rendering.add_argument("--into", type=Path, help="replace the table between the markers of this Markdown file")
    args = parser.parse_args()
    if args.command == "collect":
        args.out.write_text(json.dumps(collect(args.sweep), indent=2) + "\n")
        return
    table = render(json.loads(args.results.read_text()))
    if args.into is None:
        print(table)
        return
    text = args.into.read_text()
    start, end = text.index(f"{MARKER}\n") + len(MARKER) + 1, text.index(f"<!-- /{MARKER[5:]}")
    args.into.write_text(text[:start] + table + "\n" + text[end:])


if __name__ == "__main__":
    main()
