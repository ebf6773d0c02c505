"""The training loop: stages over X-encoder features (cached, or computed online), logging, checkpoints, exact resume.

Paper: stage 1 is query-free caption pretraining at a constant LR; stage 2 is SFT on a mixture of
VQA, captions, classification and replayed pretraining data with a cosine schedule.
Ours: each stage is a `StageConfig` (steps, batch, LR, schedule, mixture of record kinds) run by the same
loop, with a fresh AdamW per stage; the loss is `VLJepa.loss`, the one `forward` uses. Where a step's frozen
X-encoder tokens come from is the batch source's business (`batches.py`): the feature cache's table
(`features: cache`, so a step costs only the predictor and the Y-encoder), or the loader's frames through the
encoder inside the step (`features: online`, the default for shards); the data is `dataset.py`'s. What every
training loop shares comes from the substrate (`vljepa.substrate`): the device, AdamW groups, transformers'
warmup schedules and the update (`optim.py`; VL-JEPA's own groups and betas are `parameter_groups` and
`build_optimizer` here), the resumable state (`state.py`), the metrics log (`metrics.py`) and the run folder's
lock (`run_dir.py`). Every `save_every` steps (and at a requested stop) the run writes `checkpoint/`
atomically: trained weights (safetensors), configs, optimizer, scheduler, sampler position and RNG state, so a
resumed run, even after a `kill -9`, continues exactly.
For GPU-scale runs: `init_from` starts the first stage from a previous run's trained weights (the
paper's stages chain: images -> 8-frame video -> 32-frame video -> SFT, each its own run here); a
resumable checkpoint in `out_dir` takes precedence. A stage's `micro_batch_size` keeps the full
contrastive batch through gradient caching (`grad_cache.py`); `gradient_checkpointing` recomputes
transformer activations in backward. Precision follows `bf16` (auto: bf16 autocast only where the
device computes bf16 natively, `core/precision.py`); the choice is printed and recorded in the run's files.
The same loop runs data-parallel under torchrun (`distributed.py`): each rank runs its slice of every
global batch, the loss gathers every rank's embeddings, gradients are averaged over ranks, every rank
encodes its share of the clips missing from the feature cache, and only rank 0 writes logs and
checkpoints (which hold every rank's RNG state). With `sharding: fsdp` the trained parts are sharded over
the ranks (`sharding.py`); the checkpoints are gathered to rank 0 and written unsharded, in the same format.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from ..config import RUN_CONFIG_FILE, StageConfig, TrainConfig, to_dict
from ..core.atomic import atomic_directory, atomic_write, writable_folder
from ..core.compilation import Compilation, announce_compilation, resolve_compilation
from ..core.precision import Precision, announce_precision, resolve_precision
from ..core.progress import console, progress_bar
from ..data.feature_cache import FeatureCache, default_cache_dir
from ..errors import ConfigError
from ..model.vljepa import WEIGHTS_FILE, VLJepa, VLJepaOutput
from ..substrate.device import resolve_device
from ..substrate.metrics import METRICS_FILE, MetricsLog
from ..substrate.optim import apply_gradients, build_adamw, build_schedule, decay_groups
from ..substrate.run_dir import RunDirectory
from ..substrate.state import CHECKPOINT_DIR, RngState, TrainingState, load_training_state, save_training_state
from .batches import Batch, BatchSource, CachedSource, OnlineSource, StageBatches, resolve_features
from .best import EVAL_PREFIX, BestCheckpoint, metric_value
from .dataset import load_samples
from .distributed import World, init_distributed
from .grad_cache import grad_cache_backward
from .run_contract import recorded_config, resume_changes
from .sharding import (
    full_trained_state,
    load_full_state,
    load_optimizer_state,
    optimizer_state,
    shard_trained_parts,
)

FINAL_DIR = "final"
ManifestScorer = Callable[[VLJepa, str, FeatureCache], dict]  # (model, manifest, cache) -> nested figures
COLLAPSE_GRACE_STEPS = 20  # a randomly initialised predictor starts collapsed: no verdict before this many steps
VLJEPA_BETAS = (0.9, 0.95)  # AdamW's betas for VL-JEPA


def parameter_groups(model: VLJepa, lr: float, weight_decay: float) -> list[dict]:
    """VL-JEPA's groups: the Y-encoder's text model at `lr x lr_multiplier`; the frozen X-encoder never appears."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    frozen_but_trained = [name for name, _ in trainable if name.startswith("x_encoder.")]
    if frozen_but_trained:
        raise RuntimeError(f"frozen X-encoder parameter {frozen_but_trained[0]} requires grad")
    y_encoder = model.config.y_encoder
    multipliers = {"y_encoder.text_model.": y_encoder.lr_multiplier, "y_encoder.head.": y_encoder.head_lr_multiplier}
    return decay_groups(trainable, lr, weight_decay, multipliers)


def build_optimizer(model: VLJepa, stage: StageConfig, config: TrainConfig) -> torch.optim.AdamW:
    """A stage's AdamW for VL-JEPA (a fresh one per stage)."""
    return build_adamw(parameter_groups(model, stage.lr, config.weight_decay), stage.lr, VLJEPA_BETAS)


def run_config(config: TrainConfig, precision: Precision, compilation: Compilation, history: list[dict] = ()) -> dict:
    """The config as given (`bf16` and `compile` may say auto), what they resolved to, each with its reason, and
    the changes accepted on resumes (`run_contract.py`)."""
    resolved = {**precision.as_dict(), **compilation.as_dict()}
    return {**to_dict(config), "resolved": resolved, **({"history": list(history)} if history else {})}


def save_run_config(
    config: TrainConfig, precision: Precision, compilation: Compilation, directory: Path, history: list[dict] = ()
) -> None:
    """`train_config.json`, written atomically: `run_config`."""
    text = json.dumps(run_config(config, precision, compilation, history), indent=2)
    atomic_write(directory / RUN_CONFIG_FILE, lambda tmp: tmp.write_text(text))


def prediction_spread(predicted: torch.Tensor) -> float:
    """1 - mean pairwise cosine of the batch's predictions: near 0 means collapse."""
    normed = F.normalize(predicted.detach().float(), dim=-1)
    n = len(normed)
    if n < 2:
        return 1.0
    cosine = normed @ normed.T
    return float(1.0 - (cosine.sum() - cosine.diagonal().sum()) / (n * (n - 1)))


def collapse_check_from(stage: StageConfig) -> int:
    """The first step of a stage at which a low prediction spread means collapse: after the warmup, a tenth of
    the stage and `COLLAPSE_GRACE_STEPS` (so a short stage, which starts from collapsed predictions, never warns)."""
    return max(stage.warmup_steps, stage.steps // 10, COLLAPSE_GRACE_STEPS) + 1


def enable_gradient_checkpointing(model: VLJepa) -> None:
    """Recompute activations in backward instead of storing them, in every transformers model that
    trains: the predictor's Llama, and the Y-encoder's text model unless it is frozen. Memory for
    compute; the gradients do not change (torch.utils.checkpoint replays the RNG for dropout)."""
    parts = [model.predictor.llama]
    if not model.y_encoder.frozen_text_model:
        parts += [m for m in model.y_encoder.text_model.modules() if isinstance(m, PreTrainedModel)]
    for part in parts:
        # `activation_checkpointing_enable` is the newer name; `gradient_checkpointing_enable` the older one
        enable = getattr(part, "activation_checkpointing_enable", None) or part.gradient_checkpointing_enable
        enable({"use_reentrant": False})


def batch_backward(
    model: VLJepa,
    visual_tokens: Callable[[slice], torch.Tensor],
    queries: list[str | None],
    targets: list[str],
    micro_batch_size: int | None,
    autocast: Callable[[], AbstractContextManager],
    world: World = World(),
) -> VLJepaOutput:
    """The loss (`ModelConfig.loss`, InfoNCE by default) of a global batch, and its gradients in `.grad` (the same on every rank). `queries`,
    `targets` and `visual_tokens(rows)` describe the whole batch; this rank runs only its slice of it, at
    once or a micro-batch at a time (gradient caching), the loss gathers every rank's embeddings, and the
    gradients are averaged over ranks. Returns the whole batch's embeddings and loss, detached."""
    mine = world.local_rows(len(targets))
    local_queries, local_targets = queries[mine], targets[mine]

    def local_tokens(rows: slice) -> torch.Tensor:
        return visual_tokens(slice(mine.start + rows.start, mine.start + rows.stop))

    def batch_loss(predicted: torch.Tensor, target: torch.Tensor) -> VLJepaOutput:
        both = world.gather(torch.cat([predicted, target], dim=1))  # one collective for both, rows in rank order
        return model.loss(*both.split([predicted.shape[1], target.shape[1]], dim=1), targets)

    if micro_batch_size is None:
        with autocast():
            out = batch_loss(
                model.predict(local_tokens(slice(0, len(local_targets))), local_queries), model.y_encoder(local_targets)
            )
        out.loss.backward()
    else:
        out = grad_cache_backward(
            model, local_tokens, local_queries, local_targets, micro_batch_size, autocast, batch_loss
        )
    world.average_gradients(model)
    return VLJepaOutput(out.predicted.detach(), out.target.detach(), out.loss.detach())


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        progress: bool = True,
        score: ManifestScorer | None = None,
        write_card: Callable[[Path], object] | None = None,
        draw_figures: Callable[[dict, Path], None] | None = None,
    ):
        """`score(model, manifest, cache)`: the figures a `best_metric` of `eval.<figure>` is read from (the command
        line wires in the evaluation suite); needed only for such a metric. `write_card(folder)` writes the model
        card of each model folder saved (each stage's, `final/`, `best/`); the command line gives
        `eval.model_card.write_card`. `draw_figures(figures, png)` draws `score`'s latest figures for the
        trackers at each stage's end (the command line gives `eval.report.plot_validation`)."""
        if config.best_metric and config.best_metric.startswith(EVAL_PREFIX) and score is None:
            raise ConfigError(
                f"best_metric: {config.best_metric!r} is an evaluation figure, and this trainer was given no "
                f"evaluation to read it from (Trainer(..., score=...); `vljepa train` gives it)"
            )
        self.config, self.score, self.write_card, self.draw_figures = config, score, write_card, draw_figures
        self._latest_figures: dict | None = None  # `score`'s, for the trackers' task plot
        self.world, self.device = init_distributed(resolve_device(config.device))
        self.out_dir = writable_folder(config.out_dir)  # before any expensive work
        self.progress = progress and self.world.is_main
        # the folder's lock before anything else: a run refused here has written nothing into it
        self._lock = RunDirectory(self.out_dir).__enter__() if self.world.is_main else None
        try:
            self._set_up(config)
        except BaseException:
            self.release()
            raise

    def _set_up(self, config: TrainConfig) -> None:
        """Everything `__init__` does once the run folder is this process's: check the config against the run
        it may resume, then build the model, the data and the validation set."""
        self._found = load_training_state(self.out_dir)  # (checkpoint folder, state) of a run to resume, or None
        saved = recorded_config(self.out_dir) if self._found else None
        self.history = list(saved.get("history", [])) if saved else []
        if saved is not None:
            position = self._found[1].position
            changes = resume_changes(saved, config, position)
            if changes:
                self.history.append({"from": dict(position), "changed": changes})
        kept = (saved or {}).get("resolved", {}).get("precision") if config.bf16 == "auto" else None
        # the run's own choice and reason, not a new one
        self.precision = (
            Precision(kept == "bf16", saved["resolved"]["reason"])
            if kept
            else resolve_precision(config.bf16, self.device)
        )
        if self.world.is_main:
            announce_precision(self.precision)
        for stage in config.stages:
            self.world.check_batch_size(stage.batch_size, f"stage {stage.name!r}")
        torch.manual_seed(config.seed)
        self.model = VLJepa(config.model).to(self.device)
        self.model.inference_precision = self.precision  # validation and evaluation follow the run
        if self.world.rank:  # every rank initialises the same model above; from here each draws its own dropout
            torch.manual_seed(config.seed + self.world.rank)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        if config.sharding == "fsdp" and self.world.size > 1:
            shard_trained_parts(self.model)
        self.compilation = resolve_compilation(config.compile, self.device, self.world.size)
        if self.world.is_main:
            announce_compilation(self.compilation)
        if self.compilation.enabled:
            self.model.predictor.compile_for_training()
        self.features_from = resolve_features(config)
        # every rank encodes its share of the clips missing from the cache, then reads everyone's shards; only
        # reading the manifest is rank 0's first (`load_samples`: it alone extracts a shard source's videos)
        self.cache = FeatureCache(config.cache_dir or default_cache_dir(), self.model.x_encoder)
        if self.features_from == "cache":
            self.data: BatchSource = CachedSource(config, self.cache, self.device, self.progress, self.world)
            self.features = self.data.features
        else:
            self.data = OnlineSource(config, self.model, self.world, self._autocast)
            self.features = None
        self.samples = self.data.samples  # None when online: the samples are read as training goes
        self.val = None
        if config.val_manifest:
            val_samples, val_features, _ = load_samples(
                config.val_manifest, self.cache, config.model.classification_prompt, self.progress, self.world
            )
            self.val = (val_samples, val_features)
        if self.model.y_encoder.frozen_text_model:
            self._memoise_targets()
        if self.samples is not None:
            self.world.check_same(
                {kind: len(items) for kind, items in self.samples.items()},
                f"the training samples read through the feature cache {self.cache.directory} "
                f"(every rank must see the same cache_dir)",
            )
        if self.world.is_main:
            if self.samples is not None:
                self._warn_of_repeats()
            save_run_config(config, self.precision, self.compilation, self.out_dir, self.history)
        self.best = (
            BestCheckpoint.resume(self.out_dir, config.best_metric, config.best_mode) if config.best_metric else None
        )

    def _memoise_targets(self) -> None:
        """Run the frozen text model once over every distinct training and validation target now, so that
        training steps (and the demo's measurement of them) never wait for it, and the memo is the same in
        every process of the run (see `YEncoder.memoise`). Online, the training targets are not known in
        advance: the batch source memoises them as batches bring them (`batches.py`)."""
        samples = ([self.samples] if self.samples is not None else []) + ([self.val[0]] if self.val else [])
        targets = list(dict.fromkeys(s.target for by_kind in samples for items in by_kind.values() for s in items))
        with progress_bar(f"embedding {len(targets)} distinct targets", len(targets), self.progress) as advance:
            self.model.y_encoder.memoise(targets, advance)

    def _warn_of_repeats(self) -> None:
        """A batch larger than the samples its stage draws from repeats samples within the batch."""
        for stage in self.config.stages:
            available = sum(len(self.samples.get(kind, [])) for kind, weight in stage.mixture.items() if weight > 0)
            if 0 < available < stage.batch_size:
                console.print(
                    f"[yellow]warning:[/] stage {stage.name!r}: batch_size {stage.batch_size} is larger "
                    f"than its {available} training samples ({self.config.train_manifest}); each batch "
                    f"repeats samples"
                )

    def _autocast(self) -> AbstractContextManager:
        return self.precision.autocast(self.device.type)

    # --- validation ----------------------------------------------------------------------------

    def validate(self, max_per_kind: int = 256) -> dict[str, float]:
        """InfoNCE loss and in-batch top-1 (prediction -> its target among the batch) per val kind."""
        if self.val is None:
            return {}
        samples, features = self.val
        metrics = {}
        for kind, items in samples.items():
            items = items[:max_per_kind]
            if len(items) < 2:
                continue
            with self.model.inference():
                out = self.model(
                    features.gather(items, self.device), [s.query for s in items], [s.target for s in items]
                )
            predicted = F.normalize(out.predicted.float(), dim=-1)
            target = F.normalize(out.target.float(), dim=-1)
            best = (predicted @ target.T).argmax(1).tolist()
            metrics[f"val_{kind}_loss"] = float(out.loss)
            metrics[f"val_{kind}_top1"] = sum(items[b].target == s.target for b, s in zip(best, items)) / len(items)
        return metrics

    def _check_evaluation_figure(self) -> None:
        """A `best_metric` of `eval.<figure>` read from an evaluation of the starting model, so that a figure the
        evaluation does not give stops a fresh run before its first step (every rank calls it, as `_keep_best`)."""
        if self.best is not None and self.best.metric.startswith(EVAL_PREFIX):
            results = self.score(self.model, self.config.val_manifest, self.cache)
            metric_value(results, self.best.metric.removeprefix(EVAL_PREFIX))

    def _keep_best(self, evaluation: dict, position: dict) -> None:
        """Score the model by `best_metric` (into `evaluation`, the validation figures) and keep it in `best/`
        if rank 0's best so far is beaten. Every rank calls it: a sharded model's forward and weights are
        collectives."""
        if self.best is None:
            return
        metric = self.best.metric
        if metric.startswith(EVAL_PREFIX):
            results = self.score(self.model, self.config.val_manifest, self.cache)
            evaluation[metric] = metric_value(results, metric.removeprefix(EVAL_PREFIX))
            self._latest_figures = results
        elif metric not in evaluation:
            raise ConfigError(
                f"best_metric: validation logs no {metric!r}; it logs {sorted(evaluation)}, or use eval.<figure>"
            )
        if self.world.main_value(self.best.improves(evaluation[metric])):
            weights = full_trained_state(self.model)
            if self.world.is_main:
                if self.best.offer(evaluation[metric], position, lambda folder: self._write_weights(folder, weights)):
                    self._describe(self.best.directory)
            evaluation["best"] = evaluation[metric]

    def _task_plot(self) -> Callable[[Path], None] | None:
        figures, draw = self._latest_figures, self.draw_figures
        return None if figures is None or draw is None else lambda png: draw(figures, png)

    # --- checkpoints ---------------------------------------------------------------------------

    def _write_weights(self, directory: Path, trained_state: dict[str, torch.Tensor]) -> None:
        self.model.save_pretrained(directory, trained_state)
        save_run_config(self.config, self.precision, self.compilation, directory)

    def _save_model(self, directory: Path) -> None:
        """The model, unsharded, to `directory` (atomically) and its card, by rank 0; every rank calls it."""
        weights = full_trained_state(self.model)
        if self.world.is_main:
            atomic_directory(directory, lambda tmp: self.model.save_pretrained(tmp, weights))
            self._describe(directory)

    def _describe(self, directory: Path) -> None:
        if self.write_card is not None:
            self.write_card(directory)

    def _save_checkpoint(self, stage_index: int, step: int, optimizer=None, scheduler=None, sampler=None) -> None:
        """Optimizer, scheduler and sampler (the stage's batches) are None at a stage boundary (the next stage
        builds its own). Every rank calls it (each sends its RNG state and data position); rank 0 writes."""
        rng = self.world.gather_objects(RngState.capture(self.device))
        data_position = sampler and sampler.state_dict()
        weights = full_trained_state(self.model)
        optimizer_data = optimizer and optimizer_state(self.model, optimizer)
        if not self.world.is_main:
            return

        save_training_state(
            self.out_dir,
            lambda directory: self._write_weights(directory, weights),
            TrainingState(
                position={"stage": stage_index, "step": step},
                rng=rng,
                optimizer=optimizer_data,
                scheduler=scheduler and scheduler.state_dict(),
                sampler=data_position,
            ),
        )

    def _load_checkpoint(self) -> TrainingState | None:
        found, self._found = self._found, None  # read at init; a second `run` reads the folder again
        found = found or load_training_state(self.out_dir)
        if found is None:
            return None
        directory, state = found
        load_full_state(self.model, self.model.read_trained_state(directory / WEIGHTS_FILE))
        if self.world.is_main:
            console.print(f"resuming from {directory} (stage {state.position['stage']}, step {state.position['step']})")
        return state

    def _initialise_from(self, directory: Path) -> None:
        """Load a previous run's trained weights (its final/ or a stage directory): same architecture only."""
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(
                f"init_from={directory}: no {WEIGHTS_FILE}; expected the final/ directory of a previous vljepa run"
            )
        try:
            load_full_state(self.model, self.model.read_trained_state(weights))
        except (KeyError, RuntimeError) as error:
            raise ValueError(
                f"init_from={directory}: its weights do not fit this run's model; the architecture "
                f"(predictor, Y-encoder, shared_dim, and whether the text model trains) must be the "
                f"previous run's: {error}"
            ) from error
        if self.world.is_main:
            console.print(f"initialised from {directory}")

    def _restore_rng(self, states: list[RngState]) -> None:
        """This rank's RNG state from a checkpoint; another number of ranks keeps the batches but not the dropout draws."""
        if len(states) == self.world.size:
            states[self.world.rank].restore(self.device)
        elif self.world.is_main:
            console.print(
                f"[yellow]warning:[/] the checkpoint was written by {len(states)} ranks, this run has "
                f"{self.world.size}: the batches continue exactly, the dropout draws do not"
            )

    # --- the loop ------------------------------------------------------------------------------

    def _forward_backward(self, model: VLJepa, batch: Batch, micro_batch_size: int | None) -> VLJepaOutput:
        """The global batch's loss and its gradients in `.grad` (see `batch_backward`)."""
        return batch_backward(
            model,
            batch.visual_tokens,
            [s.query for s in batch.samples],
            [s.target for s in batch.samples],
            micro_batch_size,
            self._autocast,
            self.world,
        )

    def measure_step_seconds(self, stage_index: int, steps: int = 3, warm_up: int = 2) -> float:
        """Seconds per optimizer step of a stage on this machine, timed after `warm_up` untimed steps (the
        first steps of a shape pay one-off costs, a compiled predictor's compiling among them). The steps
        train the run's own model, so that what they compile serves the run, and its trained weights are
        restored afterwards; the run's optimizer state, samplers and RNG are untouched."""
        stage = self.config.stages[stage_index]
        trained = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        saved = [parameter.detach().clone() for parameter in trained]
        was_training = self.model.training
        optimizer = build_optimizer(self.model.train(), stage, self.config)
        batches = self.data.stage_batches(stage_index)
        with torch.random.fork_rng():
            for step in range(warm_up + steps):
                if step == warm_up:
                    start = time.perf_counter()
                self._forward_backward(self.model, batches.next_batch(), stage.micro_batch_size)
                apply_gradients(self.model.parameters(), optimizer, None, self.config.grad_clip)
        seconds = (time.perf_counter() - start) / steps
        with torch.no_grad():
            for parameter, value in zip(trained, saved):
                parameter.copy_(value)
        self.model.zero_grad(set_to_none=True)
        self.model.train(was_training)
        return seconds

    def run(
        self,
        stop_at_global_step: int | None = None,
        before_stage: Callable[[int], None] | None = None,
        stage_deadline: Callable[[int], float] | None = None,
    ) -> Path:
        """Train every stage; return the final model directory (or the checkpoint if stopped early).
        `before_stage(index)` is called before each stage that runs and may resize it (`resize_stage`: the
        demo sizes a stage's steps to the time left); `stage_deadline(index)`, asked after it, is a
        `time.perf_counter()` reading at which the stage ends even if it has steps left (its `steps` then
        become the steps done; single-process runs). Rank 0 holds the run folder's lock throughout."""
        if stage_deadline is not None and self.world.size > 1:
            raise ValueError("stage_deadline: ranks would stop at different steps; it is for one process")
        if self.world.is_main and self._lock is None:  # a second run of this trainer
            self._lock = RunDirectory(self.out_dir).__enter__()
        try:
            return self._run(stop_at_global_step, before_stage, stage_deadline)
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the run folder's lock (`run` does at its end; a trainer that never runs may call it)."""
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def resize_stage(self, index: int, **changes) -> StageConfig:
        """Stage `index` replaced by a copy with `changes` (e.g. `steps=`), checked as any config is; the run's
        config becomes a new checked `TrainConfig`, recorded in `train_config.json`, so the file says what ran.
        Before the stage starts (the demo sizes it to the time left) or when it ends early at its deadline."""
        stages = list(self.config.stages)
        stages[index] = dataclasses.replace(stages[index], **changes)
        self.config = dataclasses.replace(self.config, stages=stages)
        if self.world.is_main:
            save_run_config(self.config, self.precision, self.compilation, self.out_dir, self.history)
        return stages[index]

    def _run(
        self,
        stop_at_global_step: int | None,
        before_stage: Callable[[int], None] | None,
        stage_deadline: Callable[[int], float] | None,
    ) -> Path:
        resume = self._load_checkpoint()
        if resume is None and self.config.init_from:
            self._initialise_from(Path(self.config.init_from))
        if resume is None:
            self._check_evaluation_figure()
        resume_stage, resume_step = (resume.position["stage"], resume.position["step"]) if resume else (0, 0)
        resume_global = sum(s.steps for s in self.config.stages[:resume_stage]) + resume_step if resume else None
        self.model.train()
        with MetricsLog(
            self.out_dir / METRICS_FILE,
            resume_global,
            self.world.is_main,
            report_to=self.config.report_to,
            config=run_config(self.config, self.precision, self.compilation, self.history),
        ) as log:
            for stage_index in range(len(self.config.stages)):
                if stage_index < resume_stage:
                    continue
                if before_stage is not None:
                    before_stage(stage_index)
                stage = self.config.stages[stage_index]  # as `before_stage` left it
                offset = sum(s.steps for s in self.config.stages[:stage_index])  # after any resizing before
                optimizer = build_optimizer(self.model, stage, self.config)
                scheduler = build_schedule(optimizer, stage.schedule, stage.warmup_steps, stage.steps)
                sampler = self.data.stage_batches(stage_index)
                start = 0
                if resume is not None and stage_index == resume_stage:
                    if resume.optimizer is not None:
                        load_optimizer_state(self.model, optimizer, resume.optimizer)
                        scheduler.load_state_dict(resume.scheduler)
                        sampler.load_state_dict(resume.sampler)
                    self._restore_rng(resume.rng)
                    start, resume = resume_step, None
                if start >= stage.steps:
                    continue
                deadline = stage_deadline(stage_index) if stage_deadline is not None else None
                if self._run_stage(
                    stage_index, start, offset, optimizer, scheduler, sampler, stop_at_global_step, log, deadline
                ):
                    self.world.barrier()  # no rank returns before rank 0 has written
                    return self.out_dir / CHECKPOINT_DIR
        final = self.out_dir / FINAL_DIR
        self._save_model(final)
        if self.world.is_main:
            console.print(f"[green]saved[/] {final}")
        self.world.barrier()
        return final

    def _run_stage(
        self,
        stage_index: int,
        start: int,
        offset: int,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        sampler: StageBatches,
        stop_at: int | None,
        log: MetricsLog,
        deadline: float | None = None,
    ) -> bool:
        """Steps `start..` of a stage; True when stopped at `stop_at` (a checkpoint written), else the stage's
        model is saved under its name and a stage-boundary checkpoint written. Past `deadline` (a
        `time.perf_counter()` reading) the step just done is the stage's last."""
        config, stage = self.config, self.config.stages[stage_index]
        warned_collapse = False
        window_samples, window_start = 0, time.perf_counter()
        main = self.world.is_main
        with progress_bar(
            f"{stage.name}", stage.steps - start, self.progress, fields="loss {loss:.3f} | {rate:.0f} samples/s"
        ) as advance:
            for step in range(start, stage.steps):
                out = self._forward_backward(self.model, sampler.next_batch(), stage.micro_batch_size)
                grad_norm = apply_gradients(self.model.parameters(), optimizer, scheduler, config.grad_clip)
                window_samples += len(out.predicted)
                global_step = offset + step + 1
                rate = window_samples / max(1e-9, time.perf_counter() - window_start)
                advance(1, loss=out.loss.item(), rate=rate)
                done = step + 1
                if deadline is not None and done < stage.steps and time.perf_counter() > deadline:
                    console.print(f"budget: {stage.name} ended at its time, after {done} of {stage.steps} steps")
                    stage = self.resize_stage(stage_index, steps=done)
                if done % config.log_every == 0 or done == stage.steps:
                    evaluation = {}
                    if (
                        done % config.eval_every == 0 or done == stage.steps
                    ):  # every rank: a sharded forward is collective
                        evaluation = self.validate()
                        self._keep_best(evaluation, {"stage": stage.name, "step": done, "global_step": global_step})
                    if main:
                        spread = prediction_spread(out.predicted)
                        entry = {
                            "stage": stage.name,
                            "step": done,
                            "global_step": global_step,
                            "loss": out.loss.item(),
                            "lr": scheduler.get_last_lr()[0],
                            "grad_norm": grad_norm,
                            "samples_per_s": rate,
                            "precision": self.precision.name,
                            "prediction_spread": spread,
                            "temperature": self.model.temperature.item(),
                            **evaluation,
                        }
                        log.write(entry)
                        window_samples, window_start = 0, time.perf_counter()
                        if (
                            spread < config.collapse_threshold
                            and done >= collapse_check_from(stage)
                            and not warned_collapse
                        ):
                            warned_collapse = True
                            console.print(
                                f"[red]warning: predictions are collapsing[/] (spread {spread:.3f} < "
                                f"{config.collapse_threshold} at {stage.name} step {done}): lower the LR, "
                                f"raise the batch size, or check the targets"
                            )
                if done % config.save_every == 0 or global_step == stop_at:
                    self._save_checkpoint(stage_index, done, optimizer, scheduler, sampler)
                if global_step == stop_at:
                    return True
                if done == stage.steps:
                    break  # a stage ended at its deadline
        if main:
            log.stage_end(offset + stage.steps, self._task_plot())
        self._save_model(self.out_dir / stage.name)
        if stage_index == len(config.stages) - 1:  # the run's end: kept whole, so that more steps continue it
            self._save_checkpoint(stage_index, stage.steps, optimizer, scheduler, sampler)
        else:
            self._save_checkpoint(stage_index + 1, 0)  # a stage boundary: the next stage starts afresh
        return False
