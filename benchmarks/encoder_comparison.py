"""The demo with the seeded random X-encoder vs a V-JEPA-pretrained one, side by side.

Both runs share one generated world and the demo's training recipe; only `model.x_encoder.path`
differs. Writes each run's report under `<out>/<name>/` and a side-by-side table to `<out>/comparison.md`
and `<out>/comparison.json`.
Usage: python benchmarks/encoder_comparison.py --encoder runs/encoder-pretrain/encoder [--out runs/encoder-comparison]
       [--world-option size=48 --world-option num_frames=16 ...] [--only pretrained] [override ...]
`--only NAME` trains only that variant and reads the other's finished run from `<out>/<other>/results.json`
(training is deterministic, so the random run need not be repeated for each new pretrained encoder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vljepa.data.world import WorldConfig
from vljepa.demo import run_demo
from vljepa.eval.report import headline_rows, machine_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", type=Path, required=True, help="a pretrained VJEPA2 directory")
    parser.add_argument("--out", type=Path, default=Path("runs/encoder-comparison"))
    parser.add_argument("--world-option", action="append", default=[], help="WorldConfig field=value")
    parser.add_argument("--tables-only", action="store_true", help="rebuild the tables from finished runs")
    parser.add_argument(
        "--only", choices=["random", "pretrained"], help="train only this variant; read the other's finished run"
    )
    parser.add_argument("overrides", nargs="*", help="training config overrides for both runs (key=value)")
    args = parser.parse_args()
    world_config = WorldConfig.from_overrides(args.world_option)
    world_dir = args.out / "world"
    variants = {"random": [], "pretrained": [f"model.x_encoder.path={args.encoder.resolve()}"]}
    table: dict[str, dict[str, tuple[float, float]]] = {}  # task -> (value, chance)
    timings = {}
    for name, extra in variants.items():
        if not args.tables_only and args.only in (None, name):
            run_demo(args.out / name, [*args.overrides, *extra], world_config, world_dir)
        results = json.loads((args.out / name / "results.json").read_text())
        table[name] = {task: (value, chance) for task, value, chance, _ in headline_rows(results)}
        direction = results["test_single_frame"]["vqa"]["direction"]
        table[name]["direction, single frame"] = (direction["accuracy"], direction["chance"])
        heldout = results["test_heldout"]["classification"]
        table[name]["classification top-1, unseen paraphrases"] = (
            heldout["prompted"]["top1"],
            heldout["chance"]["top1"],
        )
        timings[name] = round(results["timings_s"]["total"], 1)
    lines = [
        f"Machine: {machine_description()}  ",
        f"World: {json.dumps(world_config.__dict__)}  ",
        f"Overrides: {' '.join(args.overrides) or '(none)'}  ",
        f"Wall time (s): {timings}",
        "",
        "| task | random encoder | pretrained encoder | chance |",
        "|---|---|---|---|",
    ]
    for task, (value, chance) in table["random"].items():
        lines.append(f"| {task} | {value:.1%} | {table['pretrained'][task][0]:.1%} | {chance:.1%} |")
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    (args.out / "comparison.json").write_text(
        json.dumps(
            {
                "machine": machine_description(),
                "world": world_config.__dict__,
                "overrides": args.overrides,
                "wall_time_s": timings,
                "results": {n: {t: v for t, (v, _) in rows.items()} for n, rows in table.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
