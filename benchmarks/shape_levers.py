"""What limits shape (and colour) VQA on the built-in world? Levers that cost training little or nothing,
each trained at a fraction of a small recipe's budget and scored on the test split and on training clips.

Colour fails when the question names the object by its form (BENCHMARKS.md, `world_vqa_breakdown.py`),
so both come down to telling forms apart. Each row changes one thing against `small_recipe.yaml`
(the ablations' recipe, scaled by `--budget-scale`) on a world of 2,000 training clips (`--world`: a
world of that many, e.g. `vljepa world --out runs/world-2000 num_train=2000`):
- `base`: the default frozen random X-encoder (32 px, patch 8, width 192, 4 layers);
- `h384`: the X-encoder twice as wide, so its random projection of each 8x8x2 RGB patch
  (384 numbers) keeps all of them (the predictor's input Linear is the only added cost);
- `48p12h384`: the world's frames at 48 px instead of 32, in 12-px patches, so the token
  count (and the predictor's cost) is unchanged while each patch carries 2.25x the pixels;
- `32p4`: 4-px patches at 32 px, four times the tokens (about 3.5x the training time);
- `6000-clips` / `4000-clips`: the same encoder and steps on a world with 6,000 or 4,000 training
  clips instead of 2,000 (`--world`'s config otherwise; the same test split: clips are seeded per index);
- `lr2e-3`: twice the recipe's learning rate in both stages (faster learning, or faster memorising?).
Besides the test split, every row is scored on the first 200 training clips ("train"): a large gap
between the two says the model memorises its clips rather than learns forms. And every row's frozen
X-encoder tokens are probed for form alone, without VL-JEPA's predictor: the attentive and linear
probes of `vljepa probe` (vljepa.eval.probe), trained on the training clips to name the actor's
shape (read from the world's `meaning` field; collisions, which have two actors, left out) and
scored on the test clips. A probe that fits its training clips but not the test clips says the
tokens do not carry forms in a way that generalises from that many clips.
Results are reused per run when `<out>/<row>/result.json` holds the
very same config (as in `ablations.py`). Writes `shape_levers_scale-<s>.json` and `.md` to `--results`.
Usage: python benchmarks/shape_levers.py --world runs/world-2000 [--out runs/shape-levers] [--budget-scale 0.5]
       [--rows base lr2e-3 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from ablations import budget_overrides, headline, train_and_evaluate

from vljepa import VLJepa
from vljepa.data.feature_cache import FeatureCache
from vljepa.data.manifest import ClipRef, load_manifest
from vljepa.data.world import WorldConfig
from vljepa.data.world_text import SHAPES
from vljepa.demo import ensure_world
from vljepa.eval.probe import ProbeConfig, gather, run_task
from vljepa.eval.report import machine_description
from vljepa.eval.suite import evaluate_manifest

WIDE = ("model.x_encoder.hidden_size=384", "model.x_encoder.num_heads=6")
ROWS: dict[str, tuple[tuple[str, ...], int]] = {  # name -> (config overrides, training clips)
    "base": ((), 2000),
    "h384": (WIDE, 2000),
    "48p12h384": ((*WIDE, "model.x_encoder.image_size=48", "model.x_encoder.patch_size=12"), 2000),
    "32p4": (("model.x_encoder.patch_size=4",), 2000),
    "6000-clips": ((), 6000),
    "4000-clips": ((), 4000),
    "lr2e-3": (("stages.0.lr=0.002", "stages.1.lr=0.002"), 2000),
}
TRAIN_SUBSET_CLIPS = 200


def training_subset(world_dir: Path, out: Path) -> Path:
    """A manifest of every record of the first TRAIN_SUBSET_CLIPS training clips (absolute video paths)."""
    records = [json.loads(line) for line in (world_dir / "train.jsonl").read_text().splitlines() if line]
    keep = sorted({r["video"] for r in records})[:TRAIN_SUBSET_CLIPS]
    path = out / "train-subset.jsonl"
    path.write_text(
        "".join(
            json.dumps({**r, "video": str((world_dir / r["video"]).resolve())}) + "\n"
            for r in records
            if r["video"] in keep
        )
    )
    return path


def actor_shapes(manifest: Path) -> dict[ClipRef, str]:
    """Each clip's actor's shape, from the world's caption meanings ("red circle move left"); collisions left out."""
    shapes = {}
    for record in load_manifest(manifest):
        meaning = record.extra.get("meaning", "").split()
        if record.caption is not None and len(meaning) > 2 and meaning[2] != "collide":
            shapes.setdefault(record.clip, meaning[1])
    return shapes


def shape_probe(world: Path, cache: FeatureCache) -> dict[str, dict]:
    """Attentive and linear probes of the cached tokens: the actor's shape, trained on train, scored on test."""
    train_clips, test_clips = actor_shapes(world / "train.jsonl"), actor_shapes(world / "test.jsonl")
    tokens = cache.tokens([*train_clips, *test_clips], progress=False)
    classes = list(SHAPES)
    return run_task(
        gather(train_clips, tokens, classes), gather(test_clips, tokens, classes), len(classes), ProbeConfig()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True, help="a world of 2,000 training clips (the rows' base)")
    parser.add_argument("--out", type=Path, default=Path("runs/shape-levers"))
    parser.add_argument("--budget-scale", type=float, default=0.5)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    world_dir, out = args.world.resolve(), args.out.resolve()
    given = WorldConfig(**json.loads((world_dir / "world.json").read_text())["config"])
    out.mkdir(parents=True, exist_ok=True)
    subset = training_subset(world_dir, out)
    _, budget = budget_overrides(args.budget_scale, None)
    results = {}
    probes: dict[str, dict] = {}  # one probe per (world, X-encoder): rows that change only training share it
    for name in args.rows:
        overrides, clips = ROWS[name]
        world = world_dir
        if clips != given.num_train:
            world = out / f"world-{clips}"
            ensure_world(world, replace(given, num_train=clips, num_streams=0))
        started = time.perf_counter()
        result = train_and_evaluate(out / name, world, out / "cache", [*budget, *overrides])
        model = VLJepa.from_pretrained(out / name / "final")
        cache = FeatureCache(out / "cache", model.x_encoder)
        train = headline(evaluate_manifest(model, subset, cache, progress=False, generation=False))
        probe_key = json.dumps([str(world), result["config"]["model"]["x_encoder"]], sort_keys=True)
        if probe_key not in probes:
            probes[probe_key] = shape_probe(world, cache)
        probe = probes[probe_key]
        results[name] = {
            "overrides": list(overrides),
            "training_clips": clips,
            "test": result,
            "train": train,
            "shape_probe": probe,
        }
        print(
            f"{name}: test shape {result['vqa_by_type']['shape']:.3f} colour {result['vqa_by_type']['colour']:.3f}"
            f" cls {result['cls_top1']:.3f}; train shape {train['vqa_by_type']['shape']:.3f}; shape probe "
            f"{probe['attentive']['accuracy']:.3f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    kinds = ("shape", "colour", "count", "exists", "direction", "what_happened")
    lines = [
        f"Machine: {machine_description()}  ",
        f"Budget: scale {args.budget_scale:g} of the recipe's steps; "
        "seed 0. Test = the world's test split (200 clips); train = its first 200 training clips.",
        "",
        "| row | cls top-1 | t2v R@1 | " + " | ".join(kinds) + " | train: cls / shape / colour | "
        "shape probe: attentive test / train, linear test / train | SFT samples/s | train s |",
        "|---|---|---|" + "---|" * len(kinds) + "---|---|---|---|",
    ]
    for name, row in results.items():
        test, train = row["test"], row["train"]
        cells = " | ".join(f"{100 * test['vqa_by_type'][k]:.1f}" for k in kinds)
        lines.append(
            f"| {name} | {100 * test['cls_top1']:.1f} | {100 * test['ret_R@1']:.1f} | {cells} | "
            f"{100 * train['cls_top1']:.1f} / {100 * train['vqa_by_type']['shape']:.1f} / "
            f"{100 * train['vqa_by_type']['colour']:.1f} | {probe_cell(row['shape_probe'])} | "
            f"{test['samples_per_s']['sft']:.0f} | "
            f"{test['train_s']:.0f} |"
        )
    markdown = "\n".join(lines) + "\n"
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"shape_levers_scale-{args.budget_scale:g}"
    (args.results / f"{stem}.md").write_text(markdown)
    (args.results / f"{stem}.json").write_text(
        json.dumps(
            {
                "machine": machine_description(),
                "budget_scale": args.budget_scale,
                "rows": {
                    name: {**row, "test": {k: v for k, v in row["test"].items() if k != "config"}}
                    for name, row in results.items()
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(markdown)


def probe_cell(probe: dict[str, dict]) -> str:
    return " / ".join(
        f"{100 * probe[kind]['accuracy']:.1f} / {100 * probe[kind]['train_accuracy']:.1f}"
        for kind in ("attentive", "linear")
    )


if __name__ == "__main__":
    main()
