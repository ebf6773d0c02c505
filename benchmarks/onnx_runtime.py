"""ONNX against PyTorch on a trained model: parity, int8's accuracy cost, and classify latency, throughput,
memory and cold start, for PyTorch eager, ONNX fp32 and ONNX int8 side by side in one run.

    python benchmarks/onnx_runtime.py --model runs/demo/model/final --world runs/demo/world [--clips 200]

1. Exports the model twice (`vljepa export onnx`, fp32 and `--int8`) into `--work`.
2. Answers on the world's first `--clips` held-out clips with each runtime, through the same code: every label
   record is classified (nearest of the world's classes, under the classification prompt) and every question
   record answered (nearest option). Parity: the cosine of each ONNX prediction with PyTorch's (fp32 on both
   sides: `bf16=false`), and the share of identical answers.
3. Speed, each runtime in a fresh process so that its memory is its own: load time; the latency of classifying
   one clip already decoded (preprocessing, X-encoder, predictor and the comparison with the label embeddings,
   embedded once), `--latency-runs` times after 5 warm-up calls; throughput in batches of 32; peak RSS.
   Cold start: the wall time and peak RSS of `vljepa classify VIDEO --labels @classes.txt` in a new process,
   the median of `--cold-runs`.
Writes `benchmarks/results/onnx_runtime.json` (`--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RUNTIMES = ("pytorch", "onnx_fp32", "onnx_int8")
BATCH = 32


def load_runtime(name: str, model: Path, work: Path):
    if name == "pytorch":
        from vljepa.model import VLJepa

        return VLJepa.from_pretrained(model, bf16=False)
    from vljepa.deploy.runtime import OnnxVLJepa

    return OnnxVLJepa(work / name.removeprefix("onnx_"))


def as_array(values) -> np.ndarray:
    return values.numpy() if hasattr(values, "numpy") else np.asarray(values)


def held_out(world: Path, clips: int):
    """(videos, label records, question records) of the first `clips` distinct test clips."""
    from vljepa.data.manifest import load_manifest

    records = load_manifest(world / "test.jsonl")
    videos = list(dict.fromkeys(r.clip.path for r in records))[:clips]
    chosen = set(videos)
    labels = [r for r in records if r.label and r.clip.path in chosen]
    questions = [r for r in records if r.question and r.options and r.clip.path in chosen]
    return videos, labels, questions


def predictions(runtime, frames: dict[str, np.ndarray], pairs: list[tuple[str, str]]) -> np.ndarray:
    """Normalised predictions (n, d) for (video, query) pairs, in batches."""
    rows = []
    with runtime.inference():
        for start in range(0, len(pairs), BATCH):
            chunk = pairs[start : start + BATCH]
            batch = np.stack([frames[video] for video, _ in chunk])
            rows.append(as_array(runtime.encode_video(batch, [query for _, query in chunk])))
    return np.concatenate(rows)


def answers(name: str, model: Path, work: Path, world: Path, clips: int) -> dict:
    from vljepa.data.video import read_clip_array

    runtime = load_runtime(name, model, work)
    videos, labels, questions = held_out(world, clips)
    frames = {video: read_clip_array(video, runtime_frames(runtime)) for video in videos}
    classes = (world / "classes.txt").read_text().splitlines()
    with runtime.inference():
        class_rows = as_array(runtime.encode_text(classes))
    label_pairs = [(r.clip.path, runtime.classification_prompt) for r in labels]
    question_pairs = [(r.clip.path, r.question) for r in questions]
    predicted_labels = predictions(runtime, frames, label_pairs)
    predicted_questions = predictions(runtime, frames, question_pairs)
    chosen_labels = [classes[i] for i in (predicted_labels @ class_rows.T).argmax(1)]
    chosen_options = []
    with runtime.inference():
        for row, record in zip(predicted_questions, questions):
            options = as_array(runtime.encode_text(record.options))
            chosen_options.append(record.options[int((options @ row).argmax())])
    by_type: dict[str, list[bool]] = {}
    for record, chosen in zip(questions, chosen_options):
        by_type.setdefault(record.type or "other", []).append(chosen == record.answer)
    accuracy = {"classification top-1": float(np.mean([c == r.label for c, r in zip(chosen_labels, labels)]))}
    accuracy |= {f"VQA {kind}": float(np.mean(right)) for kind, right in sorted(by_type.items())}
    return {
        "predicted": np.concatenate([predicted_labels, predicted_questions]),
        "answers": chosen_labels + chosen_options,
        "accuracy": accuracy,
        "clips": len(videos),
        "label_records": len(labels),
        "question_records": len(questions),
    }


def runtime_frames(runtime) -> int:
    return runtime.num_frames if hasattr(runtime, "num_frames") else runtime.config.x_encoder.num_frames


def speed(name: str, model: Path, work: Path, world: Path, runs: int) -> dict:
    """Load time, single-clip classify latencies and batched throughput of one runtime, in this process."""
    started = time.perf_counter()
    runtime = load_runtime(name, model, work)
    load_seconds = time.perf_counter() - started
    from vljepa.data.video import read_clip_array

    videos, _, _ = held_out(world, BATCH)
    clips = np.stack([read_clip_array(video, runtime_frames(runtime)) for video in videos])
    classes = (world / "classes.txt").read_text().splitlines()
    with runtime.inference():
        class_rows = as_array(runtime.encode_text(classes))

        def classify(batch: np.ndarray) -> np.ndarray:
            return (as_array(runtime.encode_video(batch, runtime.classification_prompt)) @ class_rows.T).argmax(1)

        for i in range(5):
            classify(clips[i : i + 1])
        latencies = []
        for i in range(runs):
            tick = time.perf_counter()
            classify(clips[i % len(clips)][None])
            latencies.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        for _ in range(3):
            classify(clips)
        throughput = 3 * len(clips) / (time.perf_counter() - tick)
    return {
        "load_seconds": load_seconds,
        "latency_ms_p50": 1000 * float(np.percentile(latencies, 50)),
        "latency_ms_p99": 1000 * float(np.percentile(latencies, 99)),
        "throughput_clips_per_s": throughput,
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM). Not `ru_maxrss`: that survives `exec`, so a
    child started from a large parent reports the parent's peak."""
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def cold_start(folder: Path, video: str, classes: Path, runs: int) -> dict:
    """Median wall time and peak RSS of `vljepa classify` in a new process (the command run as its entry point
    runs it, with the process's peak memory printed at its end)."""
    script = (
        "import sys\nfrom vljepa.cli import app\nfrom onnx_runtime import peak_rss_mb\n"
        "app(sys.argv[1:], standalone_mode=False)\nprint(peak_rss_mb())\n"
    )
    command = ["classify", video, "-m", str(folder), "--labels", f"@{classes}"]
    samples = []
    for _ in range(runs):
        tick = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", script, *command],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )
        samples.append((time.perf_counter() - tick, float(output.stdout.split()[-1])))
    return {
        "seconds": statistics.median(s[0] for s in samples),
        "peak_rss_mb": statistics.median(s[1] for s in samples),
    }


def in_child(part: str, name: str, arguments: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--part", part, "--runtime", name]
    command += ["--model", str(arguments.model), "--world", str(arguments.world), "--work", str(arguments.work)]
    command += ["--clips", str(arguments.clips), "--latency-runs", str(arguments.latency_runs)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/demo/model/final"))
    parser.add_argument("--world", type=Path, default=Path("runs/demo/world"))
    parser.add_argument("--work", type=Path, default=Path("runs/onnx_runtime"))
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_runtime.json"))
    parser.add_argument("--part", choices=("speed",), help=argparse.SUPPRESS)
    parser.add_argument("--runtime", choices=RUNTIMES, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.part == "speed":
        work = arguments.work
        print(json.dumps(speed(arguments.runtime, arguments.model, work, arguments.world, arguments.latency_runs)))
        return

    from vljepa.deploy.export import export_onnx
    from vljepa.eval.report import machine_description

    for name, int8 in (("fp32", False), ("int8", True)):
        export_onnx(arguments.model, arguments.work / name, int8=int8)
    results = {
        name: answers(name, arguments.model, arguments.work, arguments.world, arguments.clips) for name in RUNTIMES
    }
    reference = results["pytorch"]
    report = {
        "machine": machine_description(),
        "model": str(arguments.model),
        "clips": reference["clips"],
        "label_records": reference["label_records"],
        "question_records": reference["question_records"],
        "runtimes": {},
    }
    classes = arguments.world / "classes.txt"
    video = held_out(arguments.world, 1)[0][0]
    for name in RUNTIMES:
        result = results[name]
        cosine = (result["predicted"] * reference["predicted"]).sum(1)
        same = [a == b for a, b in zip(result["answers"], reference["answers"])]
        folder = arguments.model if name == "pytorch" else arguments.work / name.removeprefix("onnx_")
        report["runtimes"][name] = {
            "accuracy": result["accuracy"],
            "cosine_to_pytorch_min": float(cosine.min()),
            "cosine_to_pytorch_mean": float(cosine.mean()),
            "same_answers_as_pytorch": float(np.mean(same)),
            "speed": in_child("speed", name, arguments),
            "cold_start": cold_start(folder, video, classes, arguments.cold_runs),
            "folder_megabytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6,
        }
        print(name, json.dumps(report["runtimes"][name], indent=1), file=sys.stderr)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
