"""VL-JEPA at equal steps on variants of the demo's recipe: is form limited by the encoder, yes/no by the targets?

Each variant trains the demo's recipe (`world-tiny-demo.yaml`, fp32) for the same fixed steps, seed by seed, on
one world's clips, and is scored on its test split by `vljepa eval`; only the config overrides differ. The
default variants are the demo's seeded random encoder (32 px in 8-px patches: 2 x 4 x 4 tokens) and the same
encoder in 4-px patches (2 x 8 x 8 tokens, four times as many for the predictor to read). Both are random, so
the difference is what finer tokens make legible, not anything learnt. `--variant` names others (the predictor's
pooling, the Y-encoder head's LR). Each seed's scores also hold, per question type, the mean cosine between its
answers' target embeddings under the trained Y-encoder: how far apart the model keeps "yes" and "no", or the
four shapes.
A finished run (its eval file present) is read, not trained again.
Usage: python benchmarks/encoder_grid_vqa.py --world runs/demo/world [--out runs/encoder-grid] [--seeds 0 1 2]
       [--steps 300 1200] [--variant NAME=key=value,key=value ...] [--results benchmarks/results/encoder_grid_vqa.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
from itertools import combinations
from pathlib import Path

from vljepa.data.world_text import COLOURS, DIRECTIONS, NUMBER_WORDS, SHAPES
from vljepa.demo import DEMO_CONFIG, packaged_config
from vljepa.eval.report import machine_description
from vljepa.model import VLJepa
from vljepa.substrate.metrics import METRICS_FILE
from vljepa.tasks.embed import embed_texts

OUT, RESULTS = Path("runs/encoder-grid"), Path("benchmarks/results/encoder_grid_vqa.json")
DEFAULT_VARIANTS = {"patch 8 (the demo's)": [], "patch 4": ["model.x_encoder.patch_size=4"]}


ANSWERS = {  # the options of a world question type, whose target embeddings the model may pull together
    "exists": ["yes", "no"],
    "shape": list(SHAPES),
    "colour": list(COLOURS),
    "count": list(NUMBER_WORDS[1:]),
    "direction": list(DIRECTIONS),
}


def answer_cosines(model_dir: Path) -> dict[str, float]:
    """Per question type, the mean cosine between its answers' target embeddings (the trained Y-encoder's)."""
    model = VLJepa.from_pretrained(model_dir, bf16=False)
    means = {}
    for kind, answers in ANSWERS.items():
        embedded = embed_texts(model, answers)
        pairs = [float(embedded[i] @ embedded[j]) for i, j in combinations(range(len(answers)), 2)]
        means[kind] = sum(pairs) / len(pairs)
    return means


def run(world: Path, folder: Path, overrides: list[str], seed: int, steps: tuple[int, int], cache: Path) -> dict:
    """Train one variant with one seed and evaluate it on the test split (both skipped if already done)."""
    scores = folder.with_suffix(".json")
    if not scores.exists():
        subprocess.run(
            [
                "vljepa", "train", "--config", str(packaged_config(DEMO_CONFIG)),
                f"train_manifest={world / 'train.jsonl'}", f"val_manifest={world / 'val.jsonl'}",
                f"out_dir={folder}", f"cache_dir={cache}", "bf16=false",
                f"stages.0.steps={steps[0]}", f"stages.1.steps={steps[1]}", f"seed={seed}", *overrides,
            ],
            check=True,
        )  # fmt: skip
        subprocess.run(
            [
                "vljepa", "eval", "-m", str(folder / "final"), "--manifest", str(world / "test.jsonl"),
                "--prior", str(world / "train.jsonl"), "--cache-dir", str(cache), "--out", str(scores),
            ],
            check=True,
        )  # fmt: skip
    (test,) = json.loads(scores.read_text()).values()
    metrics = [json.loads(line) for line in (folder / METRICS_FILE).read_text().splitlines()]
    sft_rates = [m["samples_per_s"] for m in metrics if m.get("stage") == "sft" and "samples_per_s" in m]
    return {
        "vqa": {kind: row["accuracy"] for kind, row in test["vqa"].items()},
        "t2v R@1 exact": test["retrieval"]["exact"]["t2v_R@1"],
        "t2v R@1 same meaning": test["retrieval"]["same_meaning"]["t2v_R@1"],
        "classification top-1": test["classification"]["prompted"]["top1"],
        "stage 2 samples/s (median)": statistics.median(sft_rates),
        "answer cosine": answer_cosines(folder / "final"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, default=Path("runs/demo/world"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs=2, default=[300, 1200], help="stage 1 and stage 2 steps")
    parser.add_argument("--variant", action="append", default=[], help="NAME=key=value,key=value (repeatable)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = DEFAULT_VARIANTS
    if args.variant:
        variants = {
            name: [o for o in rest.split(",") if o] for name, _, rest in (v.partition("=") for v in args.variant)
        }
    runs = {}
    for index, (name, overrides) in enumerate(variants.items()):
        cache = args.out / f"cache-{index}"
        runs[name] = {
            "overrides": overrides,
            "seeds": {
                seed: run(
                    args.world, args.out / f"variant{index}-seed{seed}", overrides, seed, tuple(args.steps), cache
                )
                for seed in args.seeds
            },
        }
    command = f"python benchmarks/encoder_grid_vqa.py --world {args.world} --seeds {' '.join(map(str, args.seeds))}"
    command += f" --steps {args.steps[0]} {args.steps[1]}" + "".join(
        f" --variant {shlex.quote(v)}" for v in args.variant
    )
    for option, default in (("out", OUT), ("results", RESULTS)):
        if getattr(args, option) != default:
            command += f" --{option} {getattr(args, option)}"
    args.results.write_text(
        json.dumps(
            {
                "command": command,
                "machine": machine_description(),
                "world": str(args.world),
                "steps": {"stage 1": args.steps[0], "stage 2": args.steps[1]},
                "variants": runs,
            },
            indent=1,
        )
        + "\n"
    )
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
