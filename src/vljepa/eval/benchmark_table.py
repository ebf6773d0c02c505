"""Benchmark runs side by side, beside the paper's published numbers for the same benchmarks.

The paper's numbers are only those stated in the project's paper notes (PAPER.md, "Headline results");
a benchmark or metric they do not give shows "—", never an estimate. The notes do not always say which
metric or setting a number is; each number sits beside the row that matches it best, and its footnote
quotes what the notes say and names our mapping:
- Kinetics-400, SSv2: "zero-shot video" classification; beside our top-1 in caption mode (the paper's
  zero-shot model is the query-free pretrained one; the notes name no metric, top-1 is the convention).
- GQA, TallyQA, POPE: "VQA after SFT"; beside our accuracy over all questions (the notes do not say
  whether POPE's figure is accuracy or F1, nor which variants TallyQA's and POPE's average).
The notes' averages over eight classification (52.5) and eight retrieval (R@1 63.7) sets name no
per-dataset figures (MSR-VTT's among them), so those rows show "—".
"""

from __future__ import annotations

from dataclasses import dataclass

MISSING = "—"
SOURCE = "PAPER.md (Chen et al. 2026, arXiv:2512.10942), Headline results"


@dataclass(frozen=True)
class PaperNumber:
    value: float  # percent
    row: str  # the metric row of ours it is shown beside
    stated: str  # what the paper notes say, quoted


PAPER_NUMBERS: dict[str, PaperNumber] = {
    "kinetics400": PaperNumber(
        64.8, "top-1 (caption mode)", "Zero-shot video: 'weaker on appearance (K400 64.8 vs 76.4)'"
    ),
    "ssv2": PaperNumber(19.3, "top-1 (caption mode)", "Zero-shot video: 'Strong on motion (SSv2 19.3 vs 9.0)'"),
    "gqa": PaperNumber(61.5, "accuracy (all)", "VQA after SFT: 'GQA 61.5'"),
    "tallyqa": PaperNumber(69.9, "accuracy (all)", "VQA after SFT: 'TallyQA 69.9'"),
    "pope": PaperNumber(85.7, "accuracy (all)", "VQA after SFT: 'POPE 85.7' (POPEv2 86.3 is another set)"),
}

RANK_METRICS = ("MdR", "MnR")


def headline_metrics(result: dict) -> dict[str, float]:
    """A run's rows: metric name -> value (fractions as percent; ranks as they are)."""
    metrics, rows = result["metrics"], {}
    if "classification" in metrics:
        for mode, name in (("prompted", "prompted"), ("caption_mode", "caption mode")):
            for k in ("top1", "top5"):
                rows[f"top-{k[-1]} ({name})"] = 100 * metrics["classification"][mode][k]
    if "retrieval" in metrics:
        exact = metrics["retrieval"]["exact"]
        for direction in ("t2v", "v2t"):
            for metric in ("R@1", "R@5", "R@10", *RANK_METRICS):
                value = exact[f"{direction}_{metric}"]
                rows[f"{direction} {metric}"] = value if metric in RANK_METRICS else 100 * value
    if "vqa" in metrics:
        rows["accuracy (all)"] = 100 * metrics["vqa_overall"]["accuracy"]
        for kind, stats in metrics["vqa"].items():
            rows[f"accuracy ({kind})"] = 100 * stats["accuracy"]
            if "f1" in stats:
                rows[f"F1 ({kind})"] = 100 * stats["f1"]
                rows[f"yes-ratio ({kind})"] = 100 * stats["yes_ratio"]
    return rows


def _label(path: str, paths: list[str]) -> str:
    stem = path.rsplit("/", 1)[-1].removesuffix(".json")
    return stem if sum(p.rsplit("/", 1)[-1].removesuffix(".json") == stem for p in paths) == 1 else path


def results_table(runs: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(Markdown table lines, footnotes): a row per (benchmark, metric), a column per run (keyed by its
    file), the paper's last. Markdown, so that it pastes into a report and never wraps in a terminal."""
    paths = list(runs)
    header = ["benchmark", "metric", *(_label(path, paths) for path in paths), "paper"]
    by_run = [(run["dataset"], headline_metrics(run)) for run in runs.values()]
    footnotes, rows = [], []
    for dataset in dict.fromkeys(dataset for dataset, _ in by_run):
        paper = PAPER_NUMBERS.get(dataset)
        for row in dict.fromkeys(row for d, metrics in by_run if d == dataset for row in metrics):
            cells = [f"{metrics[row]:.1f}" if d == dataset and row in metrics else MISSING for d, metrics in by_run]
            mark = MISSING
            if paper is not None and paper.row == row:
                footnotes.append(f"[{len(footnotes) + 1}] {dataset}: {paper.stated} ({SOURCE})")
                mark = f"{paper.value:.1f} [{len(footnotes)}]"
            rows.append([dataset, row, *cells, mark])
    lines = [" | ".join(header), " | ".join("---" for _ in header), *(" | ".join(row) for row in rows)]
    return [f"| {line} |" for line in lines], footnotes
