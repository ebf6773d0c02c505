"""The paper's ablations at small scale: one command per ablation, or all of them.

Paper (PAPER.md): InfoNCE vs cosine / L1 / L2 regression; the Y-encoder's LR multiplier (x0.05 chosen;
x1.0 and frozen hurt); bidirectional vs causal predictor; with vs without caption pretraining (stage 1).
Ours: each row trains `small_recipe.yaml` (stage 1 captions, then SFT, batch 128; the comparison's
recipe) with one change given as config overrides, same seed, on one generated world and one X-encoder
feature cache shared by every row. Rows are evaluated on the world's test split: classification
top-1/top-5 (classification prompt), text->video R@1 (exact clip), VQA accuracy (mean over question
types, and per type). Predictor depth (1/2/4 layers) and a fixed vs learnable temperature are included
too; PAPER.md reports no numbers for them.
Rows with the same config train once (InfoNCE, bidirectional, with stage 1, depth 2 and a fixed
temperature are all the recipe's model). The paper ran its loss ablation with a frozen text encoder and
no head; ours keeps the recipe's frozen MiniLM with a trainable head, so a regression loss may also
collapse the targets (the spread of the predictions is reported beside each row).

Budget: `--budget-scale s` runs round(s x steps) per stage (warmup scaled alike). The Y-encoder LR
ablation fine-tunes MiniLM in four of its five rows (about 2.2x slower per step), so every one of its
rows, the frozen one included, gets `TEXT_MODEL_STEP_SHARE` of that; its baseline is the paper's x0.05,
not the recipe's frozen text model. Relative cost per row, in units of the baseline's training: depth 1
0.63, depth 4 1.65, MiniLM fine-tuned 2.2, no stage 1 1.09 (all steps at the SFT rate), other rows 1;
the 14 distinct runs cost (9.4 + 9.8 x `TEXT_MODEL_STEP_SHARE`) x s = 14.3 s units, plus world, clip
encoding and per-run set-up (REPRODUCTION.md gives the measured time). `--quick`
ignores the scale: a 160-clip world, batch 16, a few steps per stage (under a minute).
Without stage 1: its steps move to SFT, so every row sees the same number of samples (PAPER.md does
not say at which budget the paper compared).
Direction agrees?: each row is compared with its ablation's baseline setting on each metric the
paper reports for it (cls = classification top-1, ret = text->video R@1, VQA = mean accuracy); it
agrees when our difference has the paper's sign. "within noise" marks a difference smaller than two
standard errors of a difference of two accuracies on our test split (one seed; for VQA the
per-type mean is treated as one accuracy over all questions, an approximation).
Writes per-row runs under `<out>/scale-<s>/`, and `ablations.json` + `ablations.md` (`ablations_<name>.*`
for a single ablation) to `--results` (default benchmarks/results; with --quick, `<out>/quick`).
Usage: python benchmarks/ablations.py --ablation all|loss|y_encoder_lr|attention|pretraining|depth|temperature
       [--budget-scale 0.4] [--out runs/ablations] [--results DIR] [--world-option field=value ...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from vljepa.config import load_train_config, to_dict
from vljepa.data.feature_cache import FeatureCache
from vljepa.data.world import WorldConfig
from vljepa.demo import ensure_world
from vljepa.eval.report import machine_description
from vljepa.eval.suite import evaluate_manifest
from vljepa.train.trainer import CHECKPOINT_DIR, METRICS_FILE, Trainer

RECIPE = Path(__file__).with_name("small_recipe.yaml")  # every row's recipe before its one change
TEXT_MODEL_STEP_SHARE = 0.5
DEFAULT_BUDGET_SCALE = 0.4
QUICK_SCALE, QUICK_BATCH = 0.005, 16
QUICK_WORLD = WorldConfig(num_train=96, num_val=32, num_test=32, num_streams=0)
METRIC_NAMES = {"cls": "cls_top1", "ret": "ret_R@1", "VQA": "vqa"}  # the paper's metrics -> ours


@dataclass(frozen=True)
class Row:
    ablation: str
    setting: str
    overrides: tuple[str, ...]
    paper: str  # the paper's effect, quoted from PAPER.md
    paper_deltas: dict[str, float] = field(default_factory=dict)  # points vs the baseline, keys of METRIC_NAMES
    baseline: bool = False


def ablation_rows(budget: tuple[tuple[int, int], list[str]]) -> dict[str, list[Row]]:
    """Every ablation's rows; `budget` = this budget's (stage 1, SFT) steps and their overrides (the no-stage-1
    row moves stage 1's steps to SFT)."""
    return {
        "loss": [
            Row(
                "loss",
                "InfoNCE",
                (),
                "InfoNCE 23.3 cls / 30.3 ret / 44.3 VQA (frozen text encoder, no head)",
                baseline=True,
            ),
            Row(
                "loss",
                "cosine",
                ("model.loss=cosine",),
                "cosine -6.8 / -10.1 / +2.3",
                {"cls": -6.8, "ret": -10.1, "VQA": 2.3},
            ),
            Row("loss", "L1", ("model.loss=l1",), "L1 -8.5 / -14.8 / -2.4", {"cls": -8.5, "ret": -14.8, "VQA": -2.4}),
            Row("loss", "L2", ("model.loss=l2",), "L2 -9.8 / -18.6 / -0.6", {"cls": -9.8, "ret": -18.6, "VQA": -0.6}),
        ],
        "y_encoder_lr": [
            Row("y_encoder_lr", "x1", ("model.y_encoder.lr_multiplier=1.0",), "x1.0: -3.6 cls", {"cls": -3.6}),
            Row("y_encoder_lr", "x0.1", ("model.y_encoder.lr_multiplier=0.1",), "not reported"),
            Row(
                "y_encoder_lr",
                "x0.05",
                ("model.y_encoder.lr_multiplier=0.05",),
                "x0.05: the paper's choice",
                baseline=True,
            ),
            Row("y_encoder_lr", "x0.01", ("model.y_encoder.lr_multiplier=0.01",), "not reported"),
            Row(
                "y_encoder_lr",
                "frozen",
                ("model.y_encoder.lr_multiplier=0.0",),
                "frozen: -7.3 cls (hurts most)",
                {"cls": -7.3},
            ),
        ],
        "attention": [
            Row("attention", "bidirectional", (), "bidirectional: the paper's choice", baseline=True),
            Row("attention", "causal", ("model.predictor.bidirectional=false",), "causal: ~-1.9 VQA", {"VQA": -1.9}),
        ],
        "pretraining": [
            Row("pretraining", "with stage 1", (), "with caption pretraining: the paper's recipe", baseline=True),
            Row(
                "pretraining",
                "without (steps moved to SFT)",
                (sft_only(budget),),
                "skipping caption pretraining: -21.7 cls / -17.3 ret / -3.6 VQA",
                {"cls": -21.7, "ret": -17.3, "VQA": -3.6},
            ),
        ],
        "depth": [
            Row("depth", "1 layer", ("model.predictor.num_layers=1",), "not reported (paper: last 8 Llama layers)"),
            Row("depth", "2 layers", (), "not reported", baseline=True),
            Row("depth", "4 layers", ("model.predictor.num_layers=4",), "not reported"),
        ],
        "temperature": [
            Row("temperature", "fixed 0.07", (), "temperature not stated; community code: fixed 0.07", baseline=True),
            Row("temperature", "learnable (init 0.07)", ("model.learnable_temperature=true",), "not reported"),
        ],
    }


def sft_only(budget: tuple[tuple[int, int], list[str]]) -> str:
    """An override that replaces the stages by this budget's SFT stage alone, with stage 1's steps added."""
    stage_steps, overrides = budget
    sft = to_dict(load_train_config(RECIPE, overrides).stages[1])
    return "stages=" + json.dumps([{**sft, "steps": sum(stage_steps)}])


def budget_overrides(scale: float, batch_size: int | None) -> tuple[tuple[int, int], list[str]]:
    """(stage 1, SFT) steps at this scale and the overrides that set them (and the batch size, if given)."""
    stages = load_train_config(RECIPE).stages
    steps = tuple(max(1, round(s.steps * scale)) for s in stages)
    overrides = [
        f"stages.{i}.{key}={value}"
        for i, (n, stage) in enumerate(zip(steps, stages))
        for key, value in (("steps", n), ("warmup_steps", min(max(1, round(stage.warmup_steps * scale)), n)))
    ]
    if batch_size is not None:
        overrides += [f"stages.{i}.batch_size={batch_size}" for i in range(len(steps))]
    return steps, overrides


def headline(results: dict) -> dict:
    """Our metrics from `evaluate_manifest`, as accuracies in [0, 1], with the sample count behind each."""
    vqa = {kind: stats["accuracy"] for kind, stats in results["vqa"].items()}
    return {
        "cls_top1": results["classification"]["prompted"]["top1"],
        "cls_top5": results["classification"]["prompted"]["top5"],
        "ret_R@1": results["retrieval"]["exact"]["t2v_R@1"],
        "vqa": statistics.mean(vqa.values()),
        "vqa_by_type": vqa,
        "num": {
            "cls_top1": results["classification"]["num_samples"],
            "ret_R@1": results["retrieval"]["num_captions"],
            "vqa": sum(stats["num"] for stats in results["vqa"].values()),
        },
    }


def train_and_evaluate(run_dir: Path, world_dir: Path, cache_dir: Path, overrides: list[str]) -> dict:
    """Train one config and evaluate it on the test split; reuse `result.json` if it holds this very config."""
    config = load_train_config(
        RECIPE,
        [
            f"train_manifest={world_dir / 'train.jsonl'}",
            f"val_manifest={world_dir / 'val.jsonl'}",
            f"out_dir={run_dir}",
            f"cache_dir={cache_dir}",
            *overrides,
        ],
    )
    config_dict = json.loads(json.dumps(to_dict(config)))
    result_path = run_dir / "result.json"
    if result_path.is_file() and json.loads(result_path.read_text())["config"] == config_dict:
        print(f"{run_dir.name}: reusing {result_path}")
        return json.loads(result_path.read_text())
    shutil.rmtree(run_dir, ignore_errors=True)  # a stale checkpoint would otherwise be resumed
    started = time.perf_counter()
    trainer = Trainer(config, progress=False)
    mark = time.perf_counter()
    trainer.run()
    train_s = time.perf_counter() - mark
    cache = FeatureCache(cache_dir, trainer.model.x_encoder)
    results = evaluate_manifest(trainer.model, world_dir / "test.jsonl", cache, progress=False, generation=False)
    log = [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines() if line]
    rates = {
        stage.name: statistics.median(e["samples_per_s"] for e in log if e["stage"] == stage.name)
        for stage in config.stages
        if any(e["stage"] == stage.name for e in log)
    }
    result = {
        "overrides": overrides,
        "config": config_dict,
        **headline(results),
        "prediction_spread": log[-1]["prediction_spread"],
        "samples_per_s": rates,
        "train_s": round(train_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }
    result_path.write_text(json.dumps(result, indent=2))
    for name in (CHECKPOINT_DIR, *(stage.name for stage in config.stages)):  # keep final/ only (~4x less disk)
        shutil.rmtree(run_dir / name, ignore_errors=True)
    return result


def run_name(row: Row) -> str:
    """One run directory per distinct config: every row without overrides is the recipe's model."""
    if not row.overrides:
        return "baseline"
    return re.sub(r"[^a-z0-9.]+", "-", f"{row.ablation} {row.setting}".lower()).strip("-")


def judge(row: Row, ours: dict, base: dict) -> str:
    """The direction column: per metric the paper reports, whether our change from the baseline has its sign."""
    if row.baseline:
        return "baseline"
    if not row.paper_deltas:
        return "n/a (no paper number)"
    verdicts = []
    for name, paper_delta in row.paper_deltas.items():
        key = METRIC_NAMES[name]
        delta = ours[key] - base[key]
        p, q, n = ours[key], base[key], ours["num"][key]
        noise = 2 * ((p * (1 - p) + q * (1 - q)) / n) ** 0.5
        agrees = "tie" if delta == 0 else "yes" if delta * paper_delta > 0 else "no"
        verdicts.append(f"{name} {agrees} ({100 * delta:+.1f}{', within noise' if abs(delta) < noise else ''})")
    return ", ".join(verdicts)


def tables(rows: list[Row], results: dict[str, dict], directions: list[str], header: list[str]) -> str:
    lines = [
        *header,
        "",
        "| ablation | setting | ours: cls top-1 / top-5, R@1, VQA (spread) "
        "| paper's effect (PAPER.md) | direction agrees? |",
        "|---|---|---|---|---|",
    ]
    for row, direction in zip(rows, directions):
        ours = results[run_name(row)]
        cell = (
            f"{100 * ours['cls_top1']:.1f} / {100 * ours['cls_top5']:.1f}, {100 * ours['ret_R@1']:.1f}, "
            f"{100 * ours['vqa']:.1f} ({ours['prediction_spread']:.2f})"
        )
        lines.append(f"| {row.ablation} | {row.setting} | {cell} | {row.paper} | {direction} |")
    kinds = list(results[run_name(rows[0])]["vqa_by_type"])
    lines += [
        "",
        "VQA accuracy (%) per question type:",
        "",
        "| ablation | setting | " + " | ".join(kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for row in rows:
        by_type = results[run_name(row)]["vqa_by_type"]
        cells = " | ".join(f"{100 * by_type[k]:.1f}" for k in kinds)
        lines.append(f"| {row.ablation} | {row.setting} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablation", default="all", choices=["all", *ablation_rows(budget_overrides(1.0, None))])
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=DEFAULT_BUDGET_SCALE,
        help=f"fraction of the recipe's steps per stage (the Y-encoder LR ablation gets {TEXT_MODEL_STEP_SHARE} of it)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablations"))
    parser.add_argument(
        "--results",
        type=Path,
        help="where ablations.json/.md go (default benchmarks/results, or <out>/quick with --quick)",
    )
    parser.add_argument(
        "--world-option",
        action="append",
        default=[],
        help="a WorldConfig field=value for the world (not with --quick), e.g. num_train=2000",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a seconds-level smoke run: tiny world, batch {QUICK_BATCH}, budget scale {QUICK_SCALE}",
    )
    args = parser.parse_args()
    if not 0 < args.budget_scale <= 1:
        parser.error("--budget-scale must be in (0, 1]")
    if args.quick:
        scale, batch, world_config = QUICK_SCALE, QUICK_BATCH, QUICK_WORLD
    else:
        scale, batch, world_config = args.budget_scale, None, WorldConfig.from_overrides(args.world_option)
    root = args.out / "quick" if args.quick else args.out
    results_dir = args.results or (root if args.quick else Path("benchmarks/results"))
    world_dir, cache_dir, runs_dir = root / "world", root / "feature_cache", root / f"scale-{scale:g}"
    started = time.perf_counter()
    ensure_world(world_dir, world_config)

    budgets = {"main": budget_overrides(scale, batch), "text": budget_overrides(scale * TEXT_MODEL_STEP_SHARE, batch)}
    main_steps, text_steps = budgets["main"][0], budgets["text"][0]
    rows = [
        row for name, group in ablation_rows(budgets["main"]).items() if args.ablation in ("all", name) for row in group
    ]
    baselines = {row.ablation: run_name(row) for row in rows if row.baseline}
    results: dict[str, dict] = {}
    for row in rows:
        name = run_name(row)
        if name not in results:
            budget = budgets["text" if row.ablation == "y_encoder_lr" else "main"][1]
            results[name] = train_and_evaluate(runs_dir / name, world_dir, cache_dir, [*budget, *row.overrides])
            ours = results[name]
            print(
                f"{name}: cls {ours['cls_top1']:.3f}/{ours['cls_top5']:.3f}, R@1 {ours['ret_R@1']:.3f}, "
                f"VQA {ours['vqa']:.3f}, spread {ours['prediction_spread']:.2f} ({ours['total_s']:.0f} s)"
            )
    wall = time.perf_counter() - started
    directions = [judge(row, results[run_name(row)], results[baselines[row.ablation]]) for row in rows]

    runs_s = sum(result["total_s"] for result in results.values())
    batch_size = batch or 128
    header = [
        f"Machine: {machine_description()}  ",
        f"Budget: scale {scale:g} of the recipe's steps: stage 1 {main_steps[0]} + SFT {main_steps[1]} steps "
        f"at batch {batch_size}; Y-encoder LR rows {text_steps[0]} + {text_steps[1]}. Seed 0 for every run; "
        f"test split of the world {json.dumps(world_config.__dict__)}.  ",
        f"Time: {runs_s:.0f} s over {len(results)} distinct runs (each run's training and evaluation, as "
        f"measured when it ran); this invocation {wall:.0f} s.  ",
        "ours: accuracies in %; spread = 1 - mean pairwise cosine of the last training batch's predictions "
        "(near 0 = collapse). direction: our change from the ablation's baseline in points, per metric the "
        "paper reports (cls = classification top-1, ret = text->video R@1, VQA = mean over types); "
        "within noise = under 2 standard errors.",
    ]
    stem = "ablations" if args.ablation == "all" else f"ablations_{args.ablation}"
    results_dir.mkdir(parents=True, exist_ok=True)
    markdown = tables(rows, results, directions, header)
    (results_dir / f"{stem}.md").write_text(markdown)
    (results_dir / f"{stem}.json").write_text(
        json.dumps(
            {
                "machine": machine_description(),
                "budget_scale": scale,
                "text_model_step_share": TEXT_MODEL_STEP_SHARE,
                "steps": {"main": main_steps, "y_encoder_lr": text_steps},
                "batch_size": batch_size,
                "world": world_config.__dict__,
                "runs_s": round(runs_s, 1),
                "wall_time_s": round(wall, 1),
                "rows": [
                    {
                        "ablation": row.ablation,
                        "setting": row.setting,
                        "run": run_name(row),
                        "paper": row.paper,
                        "paper_deltas": row.paper_deltas,
                        "baseline": row.baseline,
                        "direction": direction,
                        **{k: v for k, v in results[run_name(row)].items() if k != "config"},
                    }
                    for row, direction in zip(rows, directions)
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(markdown)


if __name__ == "__main__":
    main()
