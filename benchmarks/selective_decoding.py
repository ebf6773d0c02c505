"""Selective decoding on long streams, the paper's protocol: CIDEr of uniform vs adaptive (Ward) decoding.

For each decode frequency f, each stream is cut into N = f x duration segments, uniformly or by Ward
clustering of its window embeddings; one caption is decoded per segment (from its mean embedding,
stamped at its midpoint), and each reference segment is scored against the temporally nearest
decoded caption. k = how much more often uniform decoding must decode to match adaptive's CIDEr.
The online change detector (live streams: no look-ahead, no target count) is swept over thresholds.

    python benchmarks/selective_decoding.py --model runs/demo/model/final \
        --streams runs/demo/world/streams.jsonl --references runs/demo/world/train.jsonl

`--references` (optional, a manifest whose records carry `meaning`) widens each reference caption to
every caption of the same meaning, so a correct paraphrase is not scored as a miss.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vljepa.data.manifest import load_manifest  # noqa: E402
from vljepa.eval.report import machine_description  # noqa: E402
from vljepa.eval.text_metrics import caption_metrics  # noqa: E402
from vljepa.model import VLJepa  # noqa: E402
from vljepa.tasks.stream import online, segment_count, uniform, ward, with_edges  # noqa: E402
from vljepa.tasks.stream_captioner import StreamConfig, decode_segments, embed_windows  # noqa: E402

FREQUENCIES = (2.0, 1.0, 0.5, 0.35, 0.2, 0.1)
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4)  # the online change detector's, with its default smoothing and min length


def nearest(times: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(times - t)))


def uniform_equivalent(target: float, uniform_points: list[tuple[float, float]]) -> float | None:
    """The frequency at which uniform decoding reaches CIDEr `target` (linear in log f between measured
    points, increasing f); None if uniform never reaches it."""
    points = sorted(uniform_points)
    if target <= points[0][1]:
        return points[0][0]
    for (f0, c0), (f1, c1) in zip(points, points[1:]):
        if c0 < target <= c1:
            share = (target - c0) / (c1 - c0)
            return math.exp(math.log(f0) + share * (math.log(f1) - math.log(f0)))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="trained model directory with a y_decoder/")
    parser.add_argument("--streams", required=True, help="manifest of streams with timed `segments`")
    parser.add_argument("--references", help="manifest whose captions of the same `meaning` widen the references")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--stride", type=float, default=0.5)
    parser.add_argument("--frequencies", type=float, nargs="+", default=list(FREQUENCIES))
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--out", default="benchmarks/results/selective_decoding.json")
    parser.add_argument("--plot", default="docs/selective_decoding.png")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = VLJepa.from_pretrained(args.model).eval()
    config = StreamConfig(window_seconds=args.window, stride_seconds=args.stride)
    by_meaning: dict[str, list[str]] = defaultdict(list)
    for record in load_manifest(args.references) if args.references else []:
        if record.caption and "meaning" in record.extra:
            by_meaning[record.extra["meaning"]].append(record.caption)

    streams = []
    embed_seconds = 0.0
    for record in load_manifest(args.streams):
        began = time.perf_counter()
        pairs = list(embed_windows(model, record.clip.path, config))
        embed_seconds += time.perf_counter() - began
        references = [
            list(dict.fromkeys([s["caption"], *by_meaning.get(s.get("meaning"), [])])) for s in record.segments
        ]
        streams.append(
            {
                "times": np.array([0.5 * (start + end) for (start, end), _ in pairs]),
                "edges": (pairs[0][0][0], pairs[-1][0][1]),
                "embeddings": np.stack([e for _, e in pairs]),
                "segments": record.segments,
                "references": references,
                "duration": record.segments[-1]["end"],
            }
        )
    duration = sum(s["duration"] for s in streams)

    def segmenter(method: str, setting: float):
        if method == "uniform":
            return lambda s: uniform(s["times"], setting)
        if method == "adaptive":
            return lambda s: ward(s["embeddings"], s["times"], segment_count(s["times"], setting))
        return lambda s: online(s["embeddings"], s["times"], threshold=setting)

    settings = [("uniform", hz) for hz in args.frequencies] + [("adaptive", hz) for hz in args.frequencies]
    settings += [("online", threshold) for threshold in args.thresholds]
    rows = []
    for method, setting in settings:
        cut_stream = segmenter(method, setting)
        predictions, references, decodes, decode_seconds = [], [], 0, 0.0
        for s in streams:
            cut = cut_stream(s)
            began = time.perf_counter()
            captions = decode_segments(model, with_edges(cut, *s["edges"]), s["embeddings"])
            decode_seconds += time.perf_counter() - began
            decodes += len(captions)
            caption_times = np.array([c.time for c in captions])
            for segment, refs in zip(s["segments"], s["references"]):
                predictions.append(captions[nearest(caption_times, 0.5 * (segment["start"] + segment["end"]))].text)
                references.append(refs)
        metrics = caption_metrics(predictions, references)
        rows.append(
            {
                "method": method,
                ("threshold" if method == "online" else "hz"): setting,
                "decodes": decodes,
                "decodes_per_second": decodes / duration,
                "decode_seconds": decode_seconds,
                **metrics,
            }
        )
        print(
            f"{method:8s} {'threshold' if method == 'online' else 'f'}={setting:<5} decodes={decodes:4d} "
            f"CIDEr-D={metrics['CIDEr-D']:.3f} "
            f"exact={metrics['exact_match']:.3f} decode time {decode_seconds:.2f} s",
            flush=True,
        )

    uniform_points = [(r["decodes_per_second"], r["CIDEr-D"]) for r in rows if r["method"] == "uniform"]
    for row in rows:
        if row["method"] == "adaptive":
            equivalent = uniform_equivalent(row["CIDEr-D"], uniform_points)
            row["uniform_equivalent_rate"] = equivalent
            row["k"] = equivalent / row["decodes_per_second"] if equivalent is not None else None
            if equivalent is None:  # better than uniform at any measured rate: k is at least this
                row["k_at_least"] = max(rate for rate, _ in uniform_points) / row["decodes_per_second"]

    results = {
        "command": "python benchmarks/selective_decoding.py "
        + " ".join(
            f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if v is not None
        ),
        "machine": machine_description(),
        "streams": len(streams),
        "video_seconds": duration,
        "reference_segments": sum(len(s["segments"]) for s in streams),
        "windows": sum(len(s["times"]) for s in streams),
        "embedding_seconds": embed_seconds,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))

    figure, axis = plt.subplots(figsize=(6, 4))
    for method, colour, label in (
        ("uniform", "tab:gray", "uniform (fixed rate)"),
        ("adaptive", "tab:red", "adaptive (Ward)"),
        ("online", "tab:blue", "online change detector"),
    ):
        points = [(r["decodes_per_second"], r["CIDEr-D"]) for r in rows if r["method"] == method]
        if points:
            axis.plot(*zip(*sorted(points)), "o-" if method != "online" else "s--", color=colour, label=label)
    axis.set_xscale("log")
    axis.set_xlabel("decodes per second of video")
    axis.set_ylabel("CIDEr-D (nearest decoded caption)")
    axis.set_title(f"selective decoding, {len(streams)} streams, {duration:.0f} s")
    axis.legend()
    figure.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot, dpi=120)
    print(json.dumps({k: v for k, v in results.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
