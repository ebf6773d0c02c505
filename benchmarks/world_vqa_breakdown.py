"""Where do colour and shape questions fail? Accuracy on the built-in world's test clips, split by
the number of shapes in the clip and by how the question names its shape ("the circle" / "the red
object" vs "the object that grows").

A diagnostic for the world only (it re-renders each test scene to count its shapes).
Usage: python benchmarks/world_vqa_breakdown.py --run runs/demo [--out benchmarks/results/world_vqa_breakdown.json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch

from vljepa import VLJepa
from vljepa.data.feature_cache import FeatureCache
from vljepa.data.manifest import load_manifest
from vljepa.data.world import WorldConfig, clip_scene
from vljepa.tasks.embed import embed_texts, predict_tokens
from vljepa.tasks.vqa import choose_options

TYPES = ("colour", "shape")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a demo output folder")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/world_vqa_breakdown.json"))
    args = parser.parse_args()
    world = args.run / "world"
    world_config = WorldConfig(**json.loads((world / "world.json").read_text())["config"])
    model = VLJepa.from_pretrained(args.run / "model" / "final").eval()
    records = [r for r in load_manifest(world / "test.jsonl") if r.type in TYPES]
    tokens = FeatureCache(args.run / "feature_cache", model.x_encoder).tokens(list({r.clip for r in records}))
    predicted = predict_tokens(model, torch.stack([tokens[r.clip] for r in records]), [r.question for r in records])
    options = list(dict.fromkeys(o for r in records for o in r.options))
    embedded = dict(zip(options, embed_texts(model, options)))
    chosen = choose_options(predicted, [torch.stack([embedded[o] for o in r.options]) for r in records])
    hits: dict[str, list[bool]] = defaultdict(list)
    for record, choice in zip(records, chosen):
        index = int(Path(record.clip.path).stem.split("_")[-1])
        scene, _ = clip_scene(world_config, "test", index)
        named_by = "role" if "object that" in record.question else "appearance"
        hits[f"{record.type} | {len(scene.tracks)} shape(s) | named by {named_by}"].append(
            record.options[choice] == record.answer)
    table = {key: {"num": len(v), "accuracy": round(sum(v) / len(v), 3)} for key, v in sorted(hits.items())}
    for key, row in table.items():
        print(f"{key:45s} n={row['num']:3d}  {row['accuracy']:.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"run": str(args.run), "breakdown": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
