"""`vljepa demo`: the whole method end to end on the built-in world, through the same manifest path
as users' data: generate the world, train stage 1 (query-free captions) and stage 2 (SFT mixture),
train the Y-decoder, evaluate on held-out clips (seen and unseen paraphrases, world prediction, a
single-frame control, captioning and open-ended VQA by decoding), caption a long stream with
selective decoding, and write a report with plots. With `minutes`, the whole demo fits that wall-clock
budget on this machine: the recipe's step counts are scaled to the measured step times (`budget.py`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from ..config import StageConfig, load_config, load_train_config
from ..core.progress import console
from ..data.feature_cache import FeatureCache
from ..data.world import WorldConfig, generate_world
from ..encoder_pretrain import load_encoder_pretrain_config, pretrain_encoder
from ..eval.model_card import add_results, write_card
from ..eval.report import write_report
from ..eval.stream_naming import stream_naming
from ..eval.stream_plot import plot_stream_timeline
from ..eval.suite import evaluate_manifest
from ..model.vljepa import DECODER_DIR, VLJepa
from ..substrate.run_dir import RunDirectory
from ..tasks.stream_captioner import StreamConfig, StreamResult, caption_stream
from ..train.decoder import DecoderTrainConfig, fit_model_decoder, measure_decoder_step_seconds, save_decoder
from ..train.trainer import METRICS_FILE, Trainer
from .budget import Part, TimeBudget, scaled_steps

DEMO_CONFIG = "world-tiny-demo.yaml"
DECODER_CONFIG = "world-tiny-decoder.yaml"
ENCODER_PRETRAIN_CONFIG = "encoder-pretrain-world.yaml"


def packaged_config(name: str) -> Path:
    return Path(str(resources.files("vljepa") / "configs" / name))


def ensure_world(world_dir: Path, config: WorldConfig) -> None:
    """Generate the world unless this exact configuration is already there."""
    marker = world_dir / "world.json"
    if marker.is_file() and json.loads(marker.read_text()).get("config") == json.loads(json.dumps(asdict(config))):
        console.print(f"world: reusing {world_dir}")
        return
    generate_world(world_dir, config)


class BudgetedRecipe:
    """The demo's recipe (training stages, Y-decoder) scaled by one fraction to fit a `TimeBudget`; each part's
    step time is measured again when it starts (the machine warm, its speed as it is then) and the part and
    those after it are sized to the time left."""

    def __init__(self, budget: TimeBudget, trainer: Trainer, decoder: DecoderTrainConfig):
        self.budget, self.trainer, self.decoder = budget, trainer, decoder
        self.recipe_steps = [stage.steps for stage in self.stages] + [
            decoder.inversion_steps + decoder.adaptation_steps
        ]
        self.inversion_share = decoder.inversion_steps / self.recipe_steps[-1]
        self.names = [stage.name for stage in self.stages] + ["Y-decoder"]
        self.measured = [self._measure(index) for index in range(len(self.names))]
        self.fractions: list[float] = []
        self.deadlines: dict[int, float] = {}
        self._size(0, check=True)

    @property
    def stages(self) -> list[StageConfig]:
        """The training stages as the trainer now holds them (sized ones are new checked configs)."""
        return self.trainer.config.stages

    def _measure(self, index: int) -> float:
        if index < len(self.stages):
            return self.trainer.measure_step_seconds(index, steps=6)
        targets = [s.target for items in self.trainer.samples.values() for s in items]
        return measure_decoder_step_seconds(
            self.decoder, targets, self.trainer.model.config.shared_dim, self.trainer.device
        )

    def parts(self, first: int = 0, sized: bool = False) -> list[Part]:
        """The parts from `first` on, at the recipe's steps (or, `sized`, the steps they were sized to) and
        their measured step times."""
        steps = self.recipe_steps if not sized else [stage.steps for stage in self.stages] + [self.decoder_steps]
        return [
            Part(name, count, seconds)
            for name, count, seconds in zip(self.names[first:], steps[first:], self.measured[first:])
        ]

    @property
    def decoder_steps(self) -> int:
        return self.decoder.inversion_steps + self.decoder.adaptation_steps

    def stage_deadline(self, index: int) -> float:
        """When training stage `index` must end (the trainer ends it there if it runs slower than measured)."""
        return self.deadlines[index]

    def _size(self, first: int, check: bool = False) -> None:
        parts = self.parts(first)
        fraction = self.budget.check_feasible(parts) if check else self.budget.fraction(parts)
        self.fractions.append(round(fraction, 4))
        for index in range(first, len(self.stages)):
            steps = scaled_steps(self.recipe_steps[index], fraction)
            warmup = min(self.stages[index].warmup_steps, steps // 4)
            self.trainer.resize_stage(index, steps=steps, warmup_steps=warmup)
        total = scaled_steps(self.recipe_steps[-1], fraction)
        inversion = scaled_steps(total, self.inversion_share)
        self.decoder = dataclasses.replace(
            self.decoder,
            inversion_steps=inversion,
            adaptation_steps=max(1, total - inversion),
            warmup_steps=min(self.decoder.warmup_steps, total // 4),
        )

    def before_part(self, index: int) -> None:
        """Before training stage `index` (or the Y-decoder, index = number of stages): measure it again and
        size it, and the parts after it, to the time left (the first part was sized at the start); then set
        when a training stage must end: its share of the time left."""
        if index > 0:
            self.measured[index] = self._measure(index)
            self._size(index)
            console.print(
                f"budget: {self.budget.seconds_left() / 60:.1f} minutes left for training; {self.names[index]} "
                f"({self.measured[index]:.3f} s/step now) sized to {self.fractions[-1]:.0%} of the recipe"
            )
        if index < len(self.stages):
            self.deadlines[index] = self.budget.deadline(self.parts(index, sized=True))

    def summary(self) -> dict:
        trained = [stage.steps for stage in self.stages] + [self.decoder_steps]
        return {
            "minutes": self.budget.minutes,
            "fraction of the recipe (at start, then re-sized per part)": self.fractions,
            "measured seconds per step (last measurement)": dict(zip(self.names, [round(s, 4) for s in self.measured])),
            "steps trained / recipe": {
                name: [done, recipe] for name, done, recipe in zip(self.names, trained, self.recipe_steps)
            },
        }


def run_demo(
    out: Path,
    overrides: list[str],
    world_config: WorldConfig | None = None,
    world_dir: Path | None = None,
    encoder_pretrain_overrides: list[str] | None = None,
    decoder_overrides: list[str] = (),
    minutes: float | None = None,
    command: str = "run_demo",
    started: float | None = None,
) -> Path:
    """Write `<out>/report.md`, `<out>/results.json` and the trained model; `world_dir` (default
    `<out>/world`) lets several runs share one generated world. With `encoder_pretrain_overrides`
    (a list, possibly empty), the X-encoder is first pretrained with V-JEPA on the world's training
    clips (`encoder-pretrain-world.yaml` + those overrides) and VL-JEPA is trained on top of it.
    `decoder_overrides` adjust the Y-decoder recipe (`world-tiny-decoder.yaml`). `minutes` (None: no
    limit) is the budget of the whole run, world included; the recipe is then the most it trains.
    `command` is how the run was started, for the report; `started` (a `time.perf_counter()` reading,
    default now) is when the budget began."""
    out = Path(out)
    timings: dict[str, float] = {}
    started = time.perf_counter() if started is None else started
    budget = TimeBudget(minutes, started) if minutes else None
    world_dir = Path(world_dir) if world_dir is not None else out / "world"
    ensure_world(world_dir, world_config or WorldConfig())
    timings["world"] = time.perf_counter() - started

    if encoder_pretrain_overrides is not None:
        mark = time.perf_counter()
        encoder = pretrain_encoder(
            load_encoder_pretrain_config(
                packaged_config(ENCODER_PRETRAIN_CONFIG),
                [
                    f"data=[{world_dir / 'train.jsonl'}]",
                    f"out_dir={out / 'encoder-pretrain'}",
                    *encoder_pretrain_overrides,
                ],
            )
        )
        overrides = [*overrides, f"model.x_encoder.path={encoder}"]
        timings["pretrain encoder"] = time.perf_counter() - mark

    mark = time.perf_counter()
    config = load_train_config(
        packaged_config(DEMO_CONFIG),
        [
            f"train_manifest={world_dir / 'train.jsonl'}",
            f"val_manifest={world_dir / 'val.jsonl'}",
            f"out_dir={out / 'model'}",
            f"cache_dir={out / 'feature_cache'}",
            *overrides,
        ],
    )
    if (out / "model").exists():  # a demo is sized to its own time budget: it starts afresh, never resumes
        with RunDirectory(out / "model"):  # refused while another demo trains there
            console.print(f"replacing the earlier demo model in {out / 'model'}")
            shutil.rmtree(out / "model")
    trainer = Trainer(config, write_card=write_card)
    decoder_config = load_config(
        DecoderTrainConfig,
        packaged_config(DECODER_CONFIG),
        [
            f"model={out / 'model' / 'final'}",
            f"train_manifest={world_dir / 'train.jsonl'}",
            f"bf16={config.bf16}",
            *decoder_overrides,
        ],
    )
    timings["encode clips"] = time.perf_counter() - mark
    sizing = None
    if budget is not None:
        mark = time.perf_counter()
        sizing = BudgetedRecipe(budget, trainer, decoder_config)
        timings["measure step times"] = time.perf_counter() - mark
        console.print(
            f"budget: {minutes:g} minutes; training {sizing.fractions[0]:.0%} of the recipe "
            f"({', '.join(f'{s.name} {s.steps} steps' for s in trainer.config.stages)}, Y-decoder "
            f"{sizing.decoder_steps} steps); the whole "
            f"recipe would take about {budget.minutes_needed(sizing.parts()):.0f} minutes here (--minutes 0)"
        )
    mark = time.perf_counter()
    trainer.run(
        before_stage=sizing.before_part if sizing else None, stage_deadline=sizing.stage_deadline if sizing else None
    )
    timings["train"] = time.perf_counter() - mark

    mark = time.perf_counter()
    config = trainer.config  # the stages as they ran (sized to the budget, or ended at their deadlines)
    if sizing is not None:
        sizing.before_part(len(config.stages))
        decoder_config = sizing.decoder
    model, cache_dir = trainer.model, config.cache_dir
    clip_cache = FeatureCache(cache_dir, model.x_encoder)
    train_demo_decoder(model, out / "model" / "final", decoder_config, clip_cache)
    timings["train decoder"] = time.perf_counter() - mark

    mark = time.perf_counter()
    results = {
        "test": evaluate_manifest(
            model, world_dir / "test.jsonl", clip_cache, prior_manifest=world_dir / "train.jsonl"
        ),
        "test_heldout": evaluate_manifest(model, world_dir / "test_heldout.jsonl", clip_cache),
        "world_prediction": evaluate_manifest(
            model, world_dir / "world_prediction_test.jsonl", clip_cache, generation=False
        ),
        "test_single_frame": evaluate_manifest(
            model,
            world_dir / "test.jsonl",
            FeatureCache(cache_dir, model.x_encoder, view="single_frame"),
            generation=False,
        ),
    }
    timings["evaluate"] = time.perf_counter() - mark

    if (world_dir / "streams.jsonl").read_text().strip():
        mark = time.perf_counter()
        results["stream"] = caption_demo_stream(model, world_dir, out / "stream_timeline.png")
        timings["caption a stream"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    results["training"] = training_summary(out / "model" / METRICS_FILE, config, decoder_config)
    results["training"]["precision"] = trainer.precision.as_dict()
    results["training"]["compile"] = trainer.compilation.as_dict()
    if sizing is not None:
        results["budget"] = {**sizing.summary(), "wall minutes": round(timings["total"] / 60, 2)}
    results["timings_s"] = timings
    (out / "results.json").write_text(json.dumps(results, indent=2))
    add_results(out / "model" / "final", out / "results.json", "demo.json")
    write_card(out / "model" / "final")  # with its Y-decoder and held-out figures
    return write_report(out, results, timings, out / "model" / METRICS_FILE, command)


def train_demo_decoder(model: VLJepa, model_dir: Path, config: DecoderTrainConfig, cache: FeatureCache) -> None:
    """Train the Y-decoder (`world-tiny-decoder.yaml`, as `config` holds it) on the in-memory model, save it
    beside the model as `vljepa train-decoder` would, and attach it."""
    decoder, log = fit_model_decoder(model, config, cache)
    save_decoder(model_dir / DECODER_DIR, decoder, config, log)
    model.attach_decoder(decoder)


def caption_demo_stream(model: VLJepa, world_dir: Path, plot: Path) -> dict:
    """Caption the world's first long stream with adaptive (Ward) selective decoding at the paper's
    0.35 Hz; a timeline plot beside its reference segments."""
    record = json.loads((world_dir / "streams.jsonl").read_text().splitlines()[0])
    video = world_dir / record["video"]
    result: StreamResult = caption_stream(model, video, StreamConfig())
    plot_stream_timeline(result, plot, reference=record["segments"])
    wall = sum(result.seconds.values())
    return {
        "video": record["video"],
        "seconds_of_video": result.duration,
        "windows": len(result.times),
        "decodes": len(result.captions),
        "wall_s": wall,
        "x_real_time": result.duration / wall,
        "captions": [asdict(c) for c in result.captions],
        "reference": record["segments"],
        "naming": stream_naming([asdict(c) for c in result.captions], record["segments"]),
    }


def training_summary(metrics_path: Path, config, decoder: DecoderTrainConfig) -> dict:
    """Median throughput per stage, the samples each stage saw and the Y-decoder's steps."""
    entries = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    summary = {}
    for stage in config.stages:
        rates = sorted(e["samples_per_s"] for e in entries if e["stage"] == stage.name)
        if rates:
            summary[f"{stage.name} samples/s (median over log windows)"] = round(rates[len(rates) // 2], 1)
        summary[f"{stage.name} samples seen"] = stage.steps * stage.batch_size
    summary["Y-decoder steps (inversion + adaptation)"] = decoder.inversion_steps + decoder.adaptation_steps
    return summary
