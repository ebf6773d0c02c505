"""The demo report: a markdown page and two PNG plots (learning curves; each task beside its chance)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..core.precision import cpu_bf16_units, cpu_capability  # noqa: E402
from ..substrate.curves import plot_learning_curves  # noqa: E402

# The figures the demo is expected to reach on held-out clips (the direction control, on a single frame,
# should instead stay near chance).
DEMO_FLOORS = {
    "action classification top-1": 0.75,
    "text->video R@1 (exact clip)": 0.35,
    "text->video R@1 (same meaning)": 0.70,
    "VQA direction": 0.85,
    "VQA what_happened": 0.80,
    "VQA colour": 0.90,
    "VQA shape": 0.55,
}
STREAM_NAMING_FLOOR = 0.70  # reference segments of the stream whose nearest caption names the right form and colour


def machine_description() -> str:
    """Architecture, CPUs, PyTorch's CPU capability (with any bf16 instructions) and torch version: quote it
    beside every speed figure, since the same command runs at very different speeds on different CPUs."""
    units = "+".join(cpu_bf16_units()) or "no bf16 instructions"
    return (
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs, capability "
        f"{cpu_capability()} ({units}), torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def headline_rows(results: dict) -> list[tuple[str, float, float, float | None]]:
    """(task, value, chance, question-only prior or None) for the held-out test split: the figures of each part
    the evaluation has (a benchmark may have only VQA, or only retrieval)."""
    test, rows = results["test"], []
    if "classification" in test:
        classification = test["classification"]
        for k in ("top1", "top5"):
            name = f"action classification top-{k[-1]}"
            rows.append((name, classification["prompted"][k], classification["chance"][k], None))
    if "retrieval" in test:
        retrieval = test["retrieval"]
        rows.append(("text->video R@1 (exact clip)", retrieval["exact"]["t2v_R@1"], retrieval["chance_R@1"], None))
        rows.append(
            (
                "text->video R@1 (same meaning)",
                retrieval["same_meaning"]["t2v_R@1"],
                retrieval["chance_R@1_same_meaning"],
                None,
            )
        )
        rows.append(("video->text R@1 (exact clip)", retrieval["exact"]["v2t_R@1"], retrieval["chance_R@1"], None))
    for kind, stats in test.get("vqa", {}).items():
        rows.append((f"VQA {kind}", stats["accuracy"], stats["chance"], stats.get("question_prior")))
    for kind, stats in results.get("world_prediction", {}).get("vqa", {}).items():
        rows.append((f"{kind}", stats["accuracy"], stats["chance"], None))
    return rows


def plot_tasks(
    rows: list[tuple[str, float, float, float | None]], out: Path, title: str = "held-out world clips"
) -> None:
    fig, axis = plt.subplots(figsize=(9, 0.45 * len(rows) + 1))
    names = [r[0] for r in rows][::-1]
    axis.barh(names, [r[1] for r in rows][::-1], color="tab:blue", label="VL-JEPA")
    axis.scatter([r[2] for r in rows][::-1], names, color="black", marker="|", s=200, label="chance", zorder=3)
    priors = [(r[3], r[0]) for r in rows if r[3] is not None]
    if priors:
        axis.scatter(
            [p for p, _ in priors],
            [n for _, n in priors],
            color="tab:red",
            marker="x",
            label="question-only prior",
            zorder=3,
        )
    axis.set(xlim=(0, 1), xlabel="accuracy / recall", title=title)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_validation(figures: dict, out: Path) -> None:
    """The task plot of a training run's evaluation of its validation manifest (`suite.validation_figures`)."""
    plot_tasks(headline_rows({"test": figures}), out, title="validation clips, scored for best_metric")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _floor(name: str, value: float) -> str:
    floor = DEMO_FLOORS.get(name)
    return "" if floor is None else f"{_pct(floor)} {'met' if value >= floor else '**missed**'}"


def _reference_at(segments: list[dict], time: float) -> str:
    return next((s["caption"] for s in segments if s["start"] <= time < s["end"]), segments[-1]["caption"])


def _naming_lines(naming: dict | None) -> list[str]:
    if naming is None:
        return []
    right = naming["form_and_colour"]
    return [
        "",
        f"Of its {naming['reference_segments']} reference segments, the caption nearest each in time names the right "
        f"form and colour for {_pct(right)} (floor {_pct(STREAM_NAMING_FLOOR)}: "
        f"{'met' if right >= STREAM_NAMING_FLOOR else '**missed**'}) and states its event for {_pct(naming['meaning'])}.",
    ]


def decoding_section(results: dict) -> list[str]:
    """Captioning, open-ended VQA and the stream, when the run trained a Y-decoder."""
    test, heldout = results["test"].get("generation"), results["test_heldout"].get("generation")
    if not test:
        return []
    lines = [
        "",
        "## Decoding: captions and open-ended answers (Y-decoder)",
        "",
        "CIDEr-D on pycocoevalcap's scale (1.0 = 100 in papers that multiply by 100); a caption's references are "
        "every caption of the same meaning in the split.",
        "",
        "| metric | seen forms | unseen forms |",
        "|---|---|---|",
    ]
    for task, label in (
        ("inversion", "decoder inversion of the captions' text embeddings"),
        ("captioning", "captioning from the video"),
    ):
        for metric in ("exact_match", "CIDEr-D", "BLEU-4", "ROUGE-L"):
            seen, unseen = test[task][metric], heldout[task][metric] if heldout else None
            show = _pct if metric == "exact_match" else (lambda v: "" if v is None else f"{v:.2f}")
            lines.append(f"| {label}: {metric.replace('_', ' ')} | {show(seen)} | {show(unseen)} |")
    lines += [
        "",
        "Open-ended VQA (no options given; exact match of the decoded answer):",
        "",
        "| question type | exact match | multiple choice (nearest option) |",
        "|---|---|---|",
    ]
    for kind, stats in test["open_vqa"].items():
        if kind not in ("overall", "examples"):
            lines.append(
                f"| {kind} | {_pct(stats['exact_match'])} | {_pct(results['test']['vqa'][kind]['accuracy'])} |"
            )
    lines += [
        "",
        "Some decoded captions:",
        "",
        "| decoded | reference |",
        "|---|---|",
        *[f"| {e['decoded']} | {e['references'][0]} |" for e in test["captioning"]["examples"][:6]],
    ]
    stream = results.get("stream")
    if stream:
        lines += [
            "",
            "## Selective decoding on a long stream",
            "",
            f"{stream['decodes']} decodes for {stream['seconds_of_video']:.0f} s of video ({stream['windows']} windows "
            f"of 2 s every 0.5 s; Ward segmentation at 0.35 Hz), {stream['x_real_time']:.0f}x real time "
            "including video decoding.",
            *_naming_lines(stream.get("naming")),
            "",
            "![stream timeline](stream_timeline.png)",
            "",
            "| segment | decoded caption | reference at its midpoint |",
            "|---|---|---|",
            *[
                f"| {c['start']:.1f}-{c['end']:.1f} s | {c['text']} | {_reference_at(stream['reference'], c['time'])} |"
                for c in stream["captions"]
            ],
        ]
    return lines


def run_section(results: dict, timings: dict[str, float]) -> list[str]:
    """Budget, wall time, precision, compilation and the samples each part trained on."""
    lines, precision, budget = [], results["training"].get("precision"), results.get("budget")
    if budget:
        steps = ", ".join(
            f"{name} {done} of {recipe}" for name, (done, recipe) in budget["steps trained / recipe"].items()
        )
        lines.append(
            f"Budget: {budget['minutes']:g} min; wall time {timings['total'] / 60:.1f} min; steps sized to "
            f"this machine's measured speed: {steps}.  "
        )
    if precision:
        lines.append(
            f"Precision: {precision['precision']} ({precision['reason']}; CPU capability "
            f"{precision['cpu_capability']}).  "
        )
    compiled = results["training"].get("compile")
    if compiled:
        lines.append(
            f"Predictor: {'compiled (torch.compile)' if compiled['compiled'] else 'eager'} ({compiled['compile_reason']}).  "
        )
    return lines


def write_report(out_dir: Path, results: dict, timings: dict[str, float], metrics_path: Path, command: str) -> Path:
    rows = headline_rows(results)
    plot_learning_curves(metrics_path, out_dir / "learning_curves.png")
    plot_tasks(rows, out_dir / "tasks.png")
    test, heldout, single = results["test"], results["test_heldout"], results["test_single_frame"]
    lines = [
        "# VL-JEPA demo report",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_description()}  ",
        f"Wall time: {timings['total']:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items() if k != "total")
        + ")  ",
        *run_section(results, timings),
        "",
        "## Held-out test clips",
        "",
        "| task | VL-JEPA | floor | chance | question-only prior |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {_pct(value)} | {_floor(name, value)} | {_pct(chance)} | {_pct(prior)} |"
            for name, value, chance, prior in rows
        ],
        "",
        "![tasks](tasks.png)",
        "",
        "## Generalisation to unseen paraphrases",
        "",
        "Same test clips; captions and class names written with templates and synonyms held out of training.",
        "",
        "| metric | seen forms | unseen forms |",
        "|---|---|---|",
        f"| classification top-1 | {_pct(test['classification']['prompted']['top1'])} | {_pct(heldout['classification']['prompted']['top1'])} |",
        f"| classification top-5 | {_pct(test['classification']['prompted']['top5'])} | {_pct(heldout['classification']['prompted']['top5'])} |",
        f"| text->video R@1 (exact clip) | {_pct(test['retrieval']['exact']['t2v_R@1'])} | {_pct(heldout['retrieval']['exact']['t2v_R@1'])} |",
        f"| text->video R@1 (same meaning) | {_pct(test['retrieval']['same_meaning']['t2v_R@1'])} | {_pct(heldout['retrieval']['same_meaning']['t2v_R@1'])} |",
        *decoding_section(results),
        "",
        "## Does the model use time? (single-frame control)",
        "",
        "The same questions with the clip replaced by its middle frame repeated (no motion left).",
        "",
        "| VQA type | full clip | single frame | chance |",
        "|---|---|---|---|",
        *[
            f"| {kind} | {_pct(stats['accuracy'])} | {_pct(single['vqa'][kind]['accuracy'])} | {_pct(stats['chance'])} |"
            for kind, stats in test["vqa"].items()
        ],
        "",
        "## Training",
        "",
        *[f"- {name}: {value}" for name, value in results.get("training", {}).items()],
        "",
        "![learning curves](learning_curves.png)",
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
