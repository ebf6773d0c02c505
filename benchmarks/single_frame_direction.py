"""What a single frame gives away about direction: the test's direction questions with the clip replaced
by its middle frame (the demo's single-frame control), split into the axis of the answer (left/right
against up/down) and its sign along that axis.

A move in the built-in world draws the actor's middle-frame position where the whole move fits in the
frame, along the move's axis only (`actor_track` in `data/world.py`): a shape near a side wall at
mid-clip cannot be moving sideways, so one frame can tell something of the axis. The sign needs motion
(or the shift of the frame read, 1/30 of the clip after the law's centre for 16 frames). Chance is 50%
for each.
Usage: python benchmarks/single_frame_direction.py --run runs/demo [--out benchmarks/results/single_frame_direction.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from world_vqa_breakdown import option_similarities

from vljepa import VLJepa
from vljepa.data.feature_cache import FeatureCache
from vljepa.data.manifest import load_manifest

AXIS = {"left": "horizontal", "right": "horizontal", "up": "vertical", "down": "vertical"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a demo output folder")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/single_frame_direction.json"))
    args = parser.parse_args()
    model = VLJepa.from_pretrained(args.run / "model" / "final").eval()
    records = [r for r in load_manifest(args.run / "world" / "test.jsonl") if r.type == "direction"]
    results = {"run": str(args.run), "num": len(records)}
    for view in ("clip", "single_frame"):
        cache = FeatureCache(args.run / "feature_cache", model.x_encoder, view=view)
        chosen = [r.options[int(s.argmax())] for r, s in zip(records, option_similarities(model, cache, records))]
        right_axis = [AXIS[c] == AXIS[r.answer] for c, r in zip(chosen, records)]
        on_axis = [c == r.answer for c, r, axis in zip(chosen, records, right_axis) if axis]
        results[view] = {
            "accuracy": round(sum(c == r.answer for c, r in zip(chosen, records)) / len(records), 3),
            "right axis": round(sum(right_axis) / len(records), 3),
            "right sign, given the right axis": round(sum(on_axis) / max(len(on_axis), 1), 3),
            "answers on the right axis": len(on_axis),
        }
        print(view, results[view])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
