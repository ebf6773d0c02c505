"""Controlled comparison: VL-JEPA against a token-generating VLM, same encoder, data, samples and steps.

Paper: with the same frozen encoder, data and batch size, VL-JEPA (0.5B predictor) reached +108%
CIDEr and +51% top-5 classification over a token VLM (1B Llama, next-token cross-entropy) at 15M
samples seen, with half the trainable parameters.
Here: both models train on the built-in world from the same cached X-encoder tokens, with one
recipe's stages (`small_recipe.yaml`: steps, batch size, mixture, LR schedule) and the same `MixtureSampler` stream (the
token VLM reads the VL-JEPA `Trainer`'s own samples; `train_token_vlm.py`). Both are evaluated at
several budgets along the run by the same code (`baselines/protocol.py`): captioning CIDEr-D,
top-1/top-5 classification, multiple-choice VQA, world prediction and open-ended VQA, each with its
wall time. VL-JEPA stops at each budget (`Trainer.run(stop_at_global_step=)`, which checkpoints and
resumes exactly), and a Y-decoder is trained for that checkpoint with the demo's decoder recipe
(`world-tiny-decoder.yaml`: 600 inversion + 400 adaptation steps) on a copy loaded from it, so
nothing done between stops touches the training run; the token VLM generates greedily.
Then inference cost per answer (`baselines/cost.py`). Writes the JSON and a plot of the metrics
against samples seen.

    python benchmarks/compare.py                      # the full comparison (benchmarks/compare.yaml)
    python benchmarks/compare.py --quick              # steps scaled down: a few minutes on 2 cores
    python benchmarks/compare.py token_vlm_lr_scale=3 # any key=value override of the YAML
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from baselines.answerers import TokenVLMAnswerer, VLJepaAnswerer  # noqa: E402
from baselines.cost import CostConfig, inference_costs  # noqa: E402
from baselines.protocol import Split, evaluate  # noqa: E402
from baselines.token_vlm import TokenVLM, TokenVLMConfig  # noqa: E402
from baselines.train_token_vlm import sample_vocabulary, train_token_vlm  # noqa: E402
from vljepa.config import TrainConfig, load_config, load_train_config, to_dict  # noqa: E402
from vljepa.core.progress import console  # noqa: E402
from vljepa.demo import DECODER_CONFIG, packaged_config  # noqa: E402
from vljepa.eval.report import machine_description  # noqa: E402
from vljepa.model import DECODER_DIR, WEIGHTS_FILE, VLJepa  # noqa: E402
from vljepa.train.decoder import DecoderTrainConfig, fit_model_decoder  # noqa: E402
from vljepa.train.trainer import Trainer  # noqa: E402


@dataclass
class QuickConfig:
    """What `--quick` changes: fewer steps everywhere, a smaller cost measurement, outputs under runs/."""

    step_scale: float = 0.1  # training steps and warmups (both models) x this
    decoder_step_scale: float = 0.1
    max_adaptation_samples: int = 2000
    cost_clips: int = 16
    class_counts: list[int] = field(default_factory=lambda: [12, 100])
    work_dir: str = "runs/compare-quick"
    out: str = "runs/compare-quick/compare.json"
    plot: str = "runs/compare-quick/compare.png"


@dataclass
class CompareConfig:
    """The comparison (benchmarks/compare.yaml); `token_vlm`'s visual_dim, vocabulary and seed are set by the run."""

    world: str = "runs/world-2000"  # a generated world (`vljepa world`)
    cache_dir: str = "runs/world-2000/feature_cache"  # its X-encoder feature cache (filled on first use)
    work_dir: str = "runs/compare"  # checkpoints of both models at every budget (emptied at start)
    out: str = "benchmarks/results/compare.json"
    plot: str = "docs/compare.png"
    recipe: str = "benchmarks/small_recipe.yaml"  # VL-JEPA's training recipe (a packaged name or a path); both models run its stages
    recipe_overrides: list[str] = field(default_factory=list)
    decoder_recipe: str = DECODER_CONFIG  # the Y-decoder recipe trained at every VL-JEPA budget
    decoder_overrides: list[str] = field(default_factory=list)
    budgets: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])  # fractions of the steps
    vljepa_lr_scale: float = 1.0  # x every stage's LR
    token_vlm_lr_scale: float = 1.0
    token_vlm: TokenVLMConfig = field(default_factory=TokenVLMConfig)
    eval_batch_size: int = 64  # token VLM samples per batch in evaluation (each multiplies into its candidates)
    cost: CostConfig = field(default_factory=CostConfig)
    quick: QuickConfig = field(default_factory=QuickConfig)
    tuning: list[dict] = field(default_factory=list)  # what was tried before settling these settings


def recipe_path(name: str) -> Path:
    return Path(name) if Path(name).is_file() else packaged_config(name)


def scaled(train: TrainConfig, scale: float) -> TrainConfig:
    stages = [
        replace(s, steps=max(1, round(s.steps * scale)), warmup_steps=round(s.warmup_steps * scale))
        for s in train.stages
    ]
    return replace(train, stages=stages)


def with_lr_scale(train: TrainConfig, scale: float) -> TrainConfig:
    return replace(train, stages=[replace(s, lr=s.lr * scale) for s in train.stages])


def samples_seen(train: TrainConfig, global_step: int) -> int:
    seen, offset = 0, 0
    for stage in train.stages:
        seen += min(max(global_step - offset, 0), stage.steps) * stage.batch_size
        offset += stage.steps
    return seen


def vljepa_parameter_counts(model: VLJepa, queries: list[str]) -> dict:
    """Trainable parameters of VL-JEPA: the predictor (with and without its token table, and counting
    only the table rows the training queries reach: the others never get a gradient) and the rest."""
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    predictor = sum(v for n, v in trainable.items() if n.startswith("predictor."))
    table = model.predictor.llama.get_input_embeddings().weight
    ids, mask = model.predictor.tokenize(queries)
    reached = len(set(ids[mask].tolist())) * table.shape[1]
    return {
        "predictor": {
            "trainable": predictor,
            "token_table": table.numel(),
            "non_embedding": predictor - table.numel(),
            "reachable": predictor - table.numel() + reached,
        },
        "y_encoder_trainable": sum(v for n, v in trainable.items() if n.startswith("y_encoder.")),
        "total_trainable": sum(trainable.values()),
    }


def decoder_recipe(config: CompareConfig, quick: bool) -> DecoderTrainConfig:
    """The Y-decoder recipe (model and manifest are filled per budget); `--quick` scales its steps."""
    recipe = load_config(
        DecoderTrainConfig,
        recipe_path(config.decoder_recipe),
        [f"cache_dir={config.cache_dir}", *config.decoder_overrides],
    )
    if not quick:
        return recipe
    scale = config.quick.decoder_step_scale
    return replace(
        recipe,
        inversion_steps=max(1, round(recipe.inversion_steps * scale)),
        adaptation_steps=max(1, round(recipe.adaptation_steps * scale)),
        warmup_steps=max(1, round(recipe.warmup_steps * scale)),
        max_adaptation_samples=config.quick.max_adaptation_samples,
    )


def run_vljepa(
    trainer: Trainer, stops: list[int], decoder: DecoderTrainConfig, test: Split, world: Split, work: Path
) -> dict:
    """Train to each stop, train a Y-decoder for that checkpoint, evaluate; returns timings and metrics."""
    train = trainer.config
    total, budgets, train_seconds = sum(s.steps for s in train.stages), [], 0.0
    model = None  # a copy for decoding and evaluation: the training model's text memo must see only its batches
    for stop in stops:
        began = time.perf_counter()
        trainer.run(stop_at_global_step=stop if stop < total else None)
        train_seconds += time.perf_counter() - began
        directory = work / "vljepa" / f"step_{stop:05d}"
        trainer.model.save_pretrained(directory)
        if model is None:
            model = VLJepa.from_pretrained(directory)
        else:  # the same copy, so its memo of the frozen text model's outputs carries over
            model.load_trained_state(directory / WEIGHTS_FILE)
        began = time.perf_counter()
        y_decoder, _ = fit_model_decoder(
            model, replace(decoder, model=str(directory), train_manifest=train.train_manifest), trainer.cache
        )
        y_decoder.save_pretrained(directory / DECODER_DIR)
        model.attach_decoder(y_decoder)
        decoder_seconds = time.perf_counter() - began
        console.print(f"[bold]VL-JEPA[/] step {stop}: evaluating")
        metrics = evaluate(VLJepaAnswerer(model), test, world, train.model.classification_prompt)
        budgets.append(
            {
                "step": stop,
                "samples_seen": samples_seen(train, stop),
                "train_seconds_so_far": train_seconds,
                "decoder_train_seconds": decoder_seconds,
                **metrics,
            }
        )
    return {"train_seconds": train_seconds, "budgets": budgets}


def build_token_vlm(trainer: Trainer, config: CompareConfig) -> TokenVLM:
    """The baseline on the trainer's visual tokens, its table the training corpus's tokens, the run's seed."""
    model_config = replace(
        config.token_vlm,
        visual_dim=trainer.model.x_encoder.embed_dim,
        seed=trainer.config.seed,
        vocabulary=sample_vocabulary(trainer.samples, config.token_vlm.tokenizer),
    )
    return TokenVLM(model_config).to(trainer.device)


def run_token_vlm(
    model: TokenVLM,
    trainer: Trainer,
    train: TrainConfig,
    stops: list[int],
    config: CompareConfig,
    test: Split,
    world: Split,
    work: Path,
) -> dict:
    """Train on the trainer's samples and stages, evaluating at each stop; returns timings and metrics."""
    budgets = []

    def on_stop(step: int, seconds: float) -> None:
        model.save_pretrained(work / "token_vlm" / f"step_{step:05d}")
        console.print(f"[bold]token VLM[/] step {step}: evaluating")
        metrics = evaluate(
            TokenVLMAnswerer(model, config.eval_batch_size), test, world, train.model.classification_prompt
        )
        budgets.append(
            {"step": step, "samples_seen": samples_seen(train, step), "train_seconds_so_far": seconds, **metrics}
        )

    run = train_token_vlm(
        model, trainer.samples, trainer.features, train, config.token_vlm_lr_scale, tuple(stops), on_stop
    )
    return {"train_seconds": run["seconds"], "budgets": budgets, "log": run["log"]}


def parameter_report(trainer: Trainer, token_vlm: TokenVLM) -> dict:
    """Both models' trainable parameters; the baseline must have at least the predictor's reachable ones."""
    queries = sorted({s.query for items in trainer.samples.values() for s in items if s.query})
    vljepa = vljepa_parameter_counts(trainer.model, queries)
    baseline, predictor = token_vlm.parameter_counts(), vljepa["predictor"]
    if baseline["trainable"] < predictor["reachable"]:
        raise ValueError(
            f"the token VLM has {baseline['trainable']} trainable parameters, fewer than the VL-JEPA "
            f"predictor's {predictor['reachable']}: raise token_vlm.num_layers or hidden_size"
        )
    return {
        "vljepa": vljepa,
        "token_vlm": baseline,
        "ratios": {
            "token_vlm / predictor (non-embedding)": baseline["non_embedding"] / predictor["non_embedding"],
            "token_vlm / predictor (reachable)": baseline["trainable"] / predictor["reachable"],
            "token_vlm / predictor (all, incl. table rows no query reaches)": baseline["trainable"]
            / predictor["trainable"],
        },
    }


def headline(budgets: list[dict]) -> list[dict]:
    return [
        {
            "step": b["step"],
            "samples_seen": b["samples_seen"],
            "CIDEr-D": b["captioning"]["CIDEr-D"],
            "top1": b["classification"]["top1"],
            "top5": b["classification"]["top5"],
            "mc_vqa": b["mc_vqa"]["accuracy"],
            "world_prediction": b["world_prediction"]["accuracy"],
            "open_vqa_exact": b["open_vqa"]["exact_match"],
        }
        for b in budgets
    ]


def chance_levels(budget: dict) -> dict[str, list[float]]:
    classification = budget["classification"]["chance"]
    return {
        "CIDEr-D": [],
        "top5": [classification["top5"], classification["top1"]],
        "mc_vqa": [budget["mc_vqa"]["chance"]],
        "world_prediction": [budget["world_prediction"]["chance"]],
    }


def plot(summary: dict, chance: dict[str, list[float]], path: Path) -> None:
    panels = [
        ("CIDEr-D", "captioning CIDEr-D"),
        ("top5", "classification top-5 (dashed: top-1)"),
        ("mc_vqa", "multiple-choice VQA"),
        ("world_prediction", "world prediction"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for axis, (key, title) in zip(axes, panels):
        for name, label, colour in (("vljepa", "VL-JEPA", "tab:blue"), ("token_vlm", "token VLM", "tab:orange")):
            seen = [r["samples_seen"] for r in summary[name]]
            axis.plot(seen, [r[key] for r in summary[name]], "o-", color=colour, label=label)
            if key == "top5":
                axis.plot(seen, [r["top1"] for r in summary[name]], "o--", color=colour, alpha=0.5)
        for level in chance[key]:
            axis.axhline(level, color="gray", linestyle=":", label="chance" if level == chance[key][0] else None)
        axis.set(title=title, xlabel="samples seen")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def load(arguments: argparse.Namespace) -> CompareConfig:
    config = load_config(CompareConfig, arguments.config, arguments.overrides)
    if not arguments.quick:
        return config
    quick = config.quick
    return replace(
        config,
        work_dir=quick.work_dir,
        out=quick.out,
        plot=quick.plot,
        cost=replace(config.cost, clips=quick.cost_clips, class_counts=quick.class_counts),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("compare.yaml"))
    parser.add_argument("--quick", action="store_true", help="scale every step count down (see `quick:` in the YAML)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the YAML")
    arguments = parser.parse_args()
    hf_logging.disable_progress_bar()
    config = load(arguments)
    started = time.perf_counter()
    world, work = Path(config.world), Path(config.work_dir)
    for part in ("vljepa", "token_vlm"):
        shutil.rmtree(work / part, ignore_errors=True)  # a fresh run: Trainer.run would resume a checkpoint

    train = load_train_config(
        recipe_path(config.recipe),
        [
            f"train_manifest={world / 'train.jsonl'}",
            f"out_dir={work / 'vljepa'}",
            f"cache_dir={config.cache_dir}",
            *config.recipe_overrides,
        ],
    )
    if arguments.quick:
        train = scaled(train, config.quick.step_scale)
    total = sum(s.steps for s in train.stages)
    stops = sorted({max(1, round(fraction * total)) for fraction in config.budgets})
    decoder = decoder_recipe(config, arguments.quick)

    trainer = Trainer(with_lr_scale(train, config.vljepa_lr_scale))
    token_model = build_token_vlm(trainer, config)
    parameters = parameter_report(trainer, token_model)
    test = Split.load(world / "test.jsonl", trainer.cache)
    world_prediction = Split.load(world / "world_prediction_test.jsonl", trainer.cache)
    vljepa = run_vljepa(trainer, stops, decoder, test, world_prediction, work)
    token_vlm = run_token_vlm(token_model, trainer, train, stops, config, test, world_prediction, work)

    costs = inference_costs(
        VLJepa.from_pretrained(work / "vljepa" / f"step_{stops[-1]:05d}"),
        token_model,
        world,
        config.cache_dir,
        config.cost,
        config.eval_batch_size,
    )

    summary = {"vljepa": headline(vljepa["budgets"]), "token_vlm": headline(token_vlm["budgets"])}
    results = {
        "command": "python benchmarks/compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "machine": machine_description(),
        "quick": arguments.quick,
        "wall_seconds": time.perf_counter() - started,
        "settings": {k: v for k, v in to_dict(config).items() if k != "tuning"},
        "stages": [to_dict(s) for s in train.stages],
        "budget_steps": stops,
        "decoder": {k: v for k, v in to_dict(decoder).items() if k not in ("model", "train_manifest")},
        "parameters": parameters,
        "tuning": config.tuning,
        "summary": summary,
        "vljepa": vljepa,
        "token_vlm": token_vlm,
        "inference_cost": costs,
    }
    Path(config.out).parent.mkdir(parents=True, exist_ok=True)
    Path(config.out).write_text(json.dumps(results, indent=2))
    plot(summary, chance_levels(vljepa["budgets"][0]), Path(config.plot))
    print(json.dumps({k: results[k] for k in ("wall_seconds", "parameters", "summary")}, indent=2))
    console.print(f"[green]wrote[/] {config.out} and {config.plot}")


if __name__ == "__main__":
    main()
