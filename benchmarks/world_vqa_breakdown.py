"""Where do colour, shape and yes/no questions fail? Accuracy on the built-in world's test clips, split
by the number of shapes in the clip and by how the question names its shape ("the circle" / "the red
object" vs "the object that grows"); "is there a red circle?" by its answer, and for "no" by whether
a shape of the named colour is in the clip. "margin": the mean gap between the cosine similarity of
the prediction to its nearest option and to the next one (how decisive the answers are).

A diagnostic for the world only (it re-renders each test scene to count its shapes).
Usage: python benchmarks/world_vqa_breakdown.py --run runs/demo [--out benchmarks/results/world_vqa_breakdown.json]
       [--model DIR --cache-dir DIR]  (another model on the run's world, e.g. one of benchmarks/encoder_grid_vqa.py)
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
from vljepa.data.world_text import COLOURS
from vljepa.tasks.embed import embed_texts, predict_tokens

TYPES = ("colour", "shape", "exists")


def group(record, scene) -> str:
    if record.type == "exists":
        if record.answer == "yes":
            return "answer yes"
        colour = next(c for c in COLOURS if f" {c} " in f" {record.question.rstrip('?')} ")
        shown = any(colour in track.colours for track in scene.tracks)
        return f"answer no, {'a shape of that colour in the clip' if shown else 'no shape of that colour'}"
    named_by = "role" if "object that" in record.question else "appearance"
    return f"{len(scene.tracks)} shape(s) | named by {named_by}"


def option_similarities(model: VLJepa, cache: FeatureCache, records: list) -> list[torch.Tensor]:
    """Each record's cosine similarity of the prediction (its clip in the cache's view, its question) to
    each of its options."""
    tokens = cache.tokens(list({r.clip for r in records}))
    predicted = predict_tokens(model, torch.stack([tokens[r.clip] for r in records]), [r.question for r in records])
    options = list(dict.fromkeys(o for r in records for o in r.options))
    embedded = dict(zip(options, embed_texts(model, options)))
    return [torch.stack([embedded[o] for o in r.options]) @ row for r, row in zip(records, predicted)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a demo output folder")
    parser.add_argument("--model", type=Path, help="a trained model folder (default: the run's model/final)")
    parser.add_argument("--cache-dir", type=Path, help="its feature cache (default: the run's feature_cache)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/world_vqa_breakdown.json"))
    args = parser.parse_args()
    world = args.run / "world"
    model_dir = args.model or args.run / "model" / "final"
    cache_dir = args.cache_dir or args.run / "feature_cache"
    world_config = WorldConfig(**json.loads((world / "world.json").read_text())["config"])
    model = VLJepa.from_pretrained(model_dir).eval()
    records = [r for r in load_manifest(world / "test.jsonl") if r.type in TYPES]
    similarities = option_similarities(model, FeatureCache(cache_dir, model.x_encoder), records)
    scenes = {
        clip: clip_scene(world_config, "test", int(Path(clip.path).stem.split("_")[-1]))[0]
        for clip in {r.clip for r in records}
    }  # re-rendered once per clip, not per question
    hits: dict[str, list[bool]] = defaultdict(list)
    margins: dict[str, list[float]] = defaultdict(list)
    for record, similarity in zip(records, similarities):
        scene = scenes[record.clip]
        key = f"{record.type} | {group(record, scene)}"
        hits[key].append(record.options[int(similarity.argmax())] == record.answer)
        margins[key].append(float(similarity.topk(2).values.diff().abs()))
    table = {
        key: {"num": len(v), "accuracy": round(sum(v) / len(v), 3), "margin": round(sum(margins[key]) / len(v), 3)}
        for key, v in sorted(hits.items())
    }
    for key, row in table.items():
        print(f"{key:50s} n={row['num']:3d}  {row['accuracy']:6.1%}  margin {row['margin']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"run": str(args.run), "model": str(model_dir), "breakdown": table}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
