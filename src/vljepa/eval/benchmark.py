"""The paper's benchmarks under their standard protocols, through the one evaluation engine.

`prepare_benchmark` imports a dataset's files into a manifest (`vljepa.datasets`) or, for `world`,
takes the built-in world's test split as it is; `evaluate_benchmark` runs `suite.evaluate_manifest` on
it, so a benchmark's figures and `vljepa eval`'s on the same manifest are the same numbers. What each
protocol needs is in the manifest, not in code here:
- classification: the dataset's class names (`classes.txt`), each Y-encoded, nearest prediction;
  top-1/top-5, under the model's classification prompt and in query-free caption mode;
- retrieval: t2v and v2t R@1/5/10, median and mean rank over the split's pool, every caption of a
  video a v2t hit (`tasks/retrieve.py`); paragraph-to-video sets carry one paragraph per video;
- VQA: nearest candidate answer (each record's `options`, else every distinct answer of the split; the
  choice is recorded as `answer_vocabulary`), accuracy per `type` (TallyQA simple/complex, POPE's
  variants, GQA's structural types) and overall; yes/no types add precision/recall/F1/yes-ratio.
Decoder metrics are skipped (`generation=False`): the paper's benchmarks are decoding-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data.feature_cache import FeatureCache
from ..data.shards import load_records
from ..datasets import BENCHMARK_INFO_FILE, IMPORTERS, BenchmarkDataError, load_benchmark, write_import
from ..model.vljepa import VLJepa
from .suite import evaluate_manifest

WORLD = "world"
BENCHMARKS = (*IMPORTERS, WORLD)


@dataclass
class PreparedBenchmark:
    dataset: str
    split: str
    protocol: str
    manifest: Path
    answer_vocabulary: str | None
    missing_media: int
    prior: Path | None = None  # a training manifest for the question-only VQA prior (the world's)


def _world(root: Path) -> PreparedBenchmark:
    manifest = root / "test.jsonl"
    if not manifest.is_file():
        raise BenchmarkDataError(f"{manifest}: file not found (the world's test split: `vljepa world --out {root}`)")
    questions = [r for r in load_records(manifest) if r.question]
    vocabulary = None
    if questions:
        vocabulary = (
            "the options each question lists"
            if all(r.options for r in questions)
            else f"every distinct answer of the split ({len({r.answer for r in questions})} answers)"
        )
    prior = root / "train.jsonl"
    return PreparedBenchmark(
        dataset=WORLD,
        split="test",
        protocol="the world's test split: classification, retrieval (exact clip and same meaning), VQA per type",
        manifest=manifest,
        answer_vocabulary=vocabulary,
        missing_media=0,
        prior=prior if prior.is_file() else None,
    )


def prepare_benchmark(
    name: str, root: str | Path, work_dir: str | Path, allow_missing: bool = False
) -> PreparedBenchmark:
    """The manifest to evaluate: `name` imported from `root` into `work_dir/manifest.jsonl`, or the world's test split."""
    root = Path(root)
    if name == WORLD:
        return _world(root)
    imported = load_benchmark(name, root, allow_missing)
    manifest = write_import(imported, Path(work_dir) / "manifest.jsonl")
    vocabulary = imported.answer_vocabulary
    if vocabulary is None and any("question" in r for r in imported.records):
        vocabulary = "every distinct answer of the split"
    return PreparedBenchmark(
        dataset=imported.dataset,
        split=imported.split,
        protocol=imported.protocol,
        manifest=manifest,
        answer_vocabulary=vocabulary,
        missing_media=len(imported.missing_media),
    )


def overall_accuracy(vqa: dict) -> dict:
    """Accuracy over every question, from the per-type results (weighted by their counts)."""
    total = sum(kind["num"] for kind in vqa.values())
    return {"num": total, "accuracy": sum(kind["num"] * kind["accuracy"] for kind in vqa.values()) / total}


def evaluate_benchmark(model: VLJepa, prepared: PreparedBenchmark, cache: FeatureCache, progress: bool = True) -> dict:
    """`evaluate_manifest` on the benchmark's manifest (no decoding), plus VQA accuracy over all types."""
    metrics = evaluate_manifest(model, prepared.manifest, cache, prepared.prior, progress=progress, generation=False)
    if "vqa" in metrics:
        metrics["vqa_overall"] = overall_accuracy(metrics["vqa"])
    return metrics


def pool_size(metrics: dict) -> dict:
    """What each task ranked: videos and captions for retrieval, classes, questions."""
    sizes = {}
    if "retrieval" in metrics:
        sizes["retrieval_videos"] = metrics["retrieval"]["pool_clips"]
        sizes["retrieval_captions"] = metrics["retrieval"]["num_captions"]
    if "classification" in metrics:
        sizes["classes"] = metrics["classification"]["num_classes"]
        sizes["classified_clips"] = metrics["classification"]["num_samples"]
    if "vqa_overall" in metrics:
        sizes["questions"] = metrics["vqa_overall"]["num"]
    return sizes


def benchmark_result(prepared: PreparedBenchmark, model_dir: str | Path, metrics: dict, contamination: dict) -> dict:
    """The run's JSON: what was measured, on what, with which model, and whether the data overlapped."""
    info_file = prepared.manifest.parent / BENCHMARK_INFO_FILE
    return {
        "dataset": prepared.dataset,
        "split": prepared.split,
        "protocol": prepared.protocol,
        "pool_size": pool_size(metrics),
        "metrics": metrics,
        "model": str(Path(model_dir).resolve()),
        "manifest": str(prepared.manifest.resolve()),
        "answer_vocabulary": prepared.answer_vocabulary,
        "missing_media": prepared.missing_media,
        "import": json.loads(info_file.read_text()) if prepared.dataset != WORLD and info_file.is_file() else None,
        "contamination": contamination,
    }
