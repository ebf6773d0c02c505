"""The settings that fit each stage of a recipe on given GPUs, and what the stage costs in GPU-hours.

Paper: a recipe of four stages (batches of 24k and 12k samples, 1 to 32 frames) on an unstated number of
GPUs; no memory figures.
Ours: per rank and stage, the bytes of `trace.py` (weights, AdamW, and the step's passes traced on fake
tensors as a line in the micro-batch), under the settings the trainer has:
- `micro_batch_size`: the largest that fits under the card's memory less a safety margin, and the
  gradient-caching chunks that reach the rank's share of the global batch;
- `gradient_checkpointing` and `sharding: fsdp` are tried in that order only when the plain step cannot
  run micro-batches of at least `EFFICIENT_MICRO_BATCH` samples (smaller ones leave a GPU idle): both
  cost compute or communication. FSDP divides the trained weights, their AdamW moments and the optimizer
  step by the ranks and adds two gathered layers (the one running and the one prefetched); the passes are
  counted unsharded, an upper bound;
- when nothing fits, the plan says by how much, and what would: more GPUs under FSDP, or less to hold.
Time: FLOPs of one sample's forward from `vljepa info` (matmuls and attention), times the passes the step
runs (the frozen X-encoder once; the trained parts forward in both passes and backward at twice the
forward; checkpointing adds a forward; a frozen text model runs forward in both passes), over a stated,
overridable peak throughput and utilisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..config import StageConfig, TrainConfig
from ..core.progress import console
from ..model.info import describe
from ..registry import ModelSpec
from .profile_table import KeptTraces, profile_key, read_table
from .trace import PassesProfile, StepShape, TracedModel, WeightBytes, chunk_shape

EFFICIENT_MICRO_BATCH = 8  # fewer samples per micro-batch leave a large GPU mostly idle
QUERY_STAGES = ("vqa", "label")  # mixture kinds whose samples carry a query
PARTS = ("X-encoder", "Predictor", "Y-encoder")  # the parts of `vljepa info` whose FLOPs a step spends


@dataclass(frozen=True)
class Hardware:
    memory: int  # bytes per GPU
    gpus_per_node: int
    nodes: int = 1
    margin: float = 0.10  # of the memory kept free: allocator slack, CUDA context, fragmentation
    peak_flops: float = 989e12  # per GPU: H100 SXM, dense bf16
    utilisation: float = 0.40  # of the peak a well-tuned run sustains

    @property
    def ranks(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def usable(self) -> int:
        return int(self.memory * (1 - self.margin))


@dataclass(frozen=True)
class Lengths:
    text_tokens: int = 32  # a target text's tokens (captions and answers; capped by the model's max_length)
    query_tokens: int = 32  # a query's tokens, in stages whose mixture has questions or labels


@dataclass
class Setting:
    checkpointing: bool
    fsdp: bool
    micro_batch: int  # 0: not even one sample fits
    peak: int  # bytes per rank at that micro-batch (at one sample when none fits)
    weights: int  # of which: weights, AdamW moments (sharded by FSDP), FSDP's gathered layers
    passes: int  # of which: the passes' peak (or AdamW's step, when larger)


@dataclass
class StagePlan:
    name: str
    frames: int
    global_batch: int
    steps: int
    ranks: int
    local_rows: int
    configured_micro_batch: int | None
    configured_fits: bool | None
    chosen: Setting | None  # None: nothing fits
    tried: list[Setting] = field(default_factory=list)
    advice: str = ""
    flops_per_sample: float = 0.0
    gpu_hours: float = 0.0

    @property
    def chunks(self) -> int:
        return math.ceil(self.local_rows / self.chosen.micro_batch) if self.chosen else 0

    @property
    def wall_hours(self) -> float:
        return self.gpu_hours / self.ranks


def _has_queries(stage: StageConfig) -> bool:
    return any(kind in stage.mixture for kind in QUERY_STAGES)


def _rank_weights(weights: WeightBytes, fsdp: bool, ranks: int) -> tuple[int, int]:
    """(bytes held throughout, bytes of AdamW's step) per rank."""
    share = ranks if fsdp and ranks > 1 else 1
    held = weights.frozen + (weights.trained + weights.adamw_moments) // share
    if share > 1:
        held += 2 * weights.largest_trained_layer
    return held, weights.adamw_step // share


def _largest_fitting(profile: PassesProfile, held: int, step: int, limit: int, usable: int) -> int:
    """The largest micro-batch in 1..limit whose peak fits in `usable` bytes (0 if none)."""
    fits = lambda m: held + max(profile.peak(m, math.ceil(limit / m)), step) <= usable  # noqa: E731
    if not fits(1):
        return 0
    low, high = 1, limit
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


@dataclass(frozen=True)
class ForwardShape:
    """One sample's forward, whose FLOPs `vljepa info` counts."""

    frames: int
    query_tokens: int
    text_tokens: int


def forward_flops(spec: ModelSpec, shape: ForwardShape) -> tuple[float, float, float]:
    """FLOPs of one sample's forward through the X-encoder, the predictor and the text model, as `vljepa info`
    counts them."""
    info = describe("plan", spec, shape.frames, shape.query_tokens, shape.text_tokens)
    x, predictor, text = (sum(p.flops for p in info.parts if p.part == part) for part in PARTS)
    return x, predictor, text


def training_flops_per_sample(spec: ModelSpec, forward: tuple[float, float, float], checkpointing: bool) -> float:
    """Training FLOPs of one sample: the X-encoder's forward once, the trained parts' forward in both passes and
    their backward at twice it (plus a forward under checkpointing), a frozen text model's forward twice."""
    x, predictor, text = forward
    text_trains = spec.config.y_encoder.lr_multiplier != 0
    trained_passes = 4 + (1 if checkpointing else 0)  # forward in both passes, backward at 2x
    return x + trained_passes * predictor + (trained_passes if text_trains else 2) * text


def predicted_step(
    model: TracedModel, shape: StepShape, micro_batch: int, foreach_adamw: bool
) -> tuple[WeightBytes, int]:
    """One rank's weights and the step's own peak (beyond weights and moments), nothing sharded."""
    weights = model.weights(foreach_adamw)
    chunks = math.ceil(shape.local_rows / micro_batch)
    return weights, max(model.passes(shape).peak(micro_batch, chunks), weights.adamw_step)


class Planner:
    """Plans the stages of recipes on one model (built once; each pass-2 shape traced once and each forward's FLOPs
    counted once, or read from the package's table of kept traces)."""

    def __init__(
        self,
        spec: ModelSpec,
        hardware: Hardware,
        lengths: Lengths = Lengths(),
        bf16: bool = True,
        known: KeptTraces | None = None,
    ):
        self.spec, self.hardware, self.lengths, self.bf16 = spec, hardware, lengths, bf16
        self.model = TracedModel(spec.config, spec.architectures)
        self.weights = self.model.weights(foreach_adamw=True)  # the GPU's default AdamW
        self.known = read_table() if known is None else known  # by `profile_key`
        self.traced = KeptTraces()  # what this planner had to trace or count
        self._profiles: dict[StepShape, PassesProfile] = {}

    def _key(self, shape: object) -> str:
        return profile_key(self.spec.config, self.spec.architectures, shape)

    def profile(self, shape: StepShape) -> PassesProfile:
        if shape not in self._profiles:
            chunks, key = chunk_shape(shape), self._key(chunk_shape(shape))
            if key not in self.known.profiles and key not in self.traced.profiles:
                console.print(f"plan: tracing {chunks}, which the package's table does not hold")
                self.traced.profiles[key] = self.model.chunks(chunks)
            kept = self.known.profiles.get(key) or self.traced.profiles[key]
            self._profiles[shape] = self.model.passes(shape, kept)
        return self._profiles[shape]

    def flops(self, shape: ForwardShape) -> tuple[float, float, float]:
        key = self._key(shape)
        if key not in self.known.flops and key not in self.traced.flops:
            self.traced.flops[key] = forward_flops(self.spec, shape)
        return self.known.flops.get(key) or self.traced.flops[key]

    def forward_shape(self, stage: StageConfig, config: TrainConfig) -> ForwardShape:
        shape = self.stage_shape(stage, config)
        return ForwardShape(shape.frames, shape.query_tokens, shape.text_tokens)

    def _setting(self, shape: StepShape, fsdp: bool, limit: int) -> Setting:
        profile = self.profile(shape)
        held, step = _rank_weights(self.weights, fsdp, self.hardware.ranks)
        micro = _largest_fitting(profile, held, step, limit, self.hardware.usable)
        passes = max(profile.peak(max(micro, 1), math.ceil(limit / max(micro, 1))), step)
        return Setting(shape.checkpointing, fsdp, micro, held + passes, held, passes)

    def stage_shape(self, stage: StageConfig, config: TrainConfig) -> StepShape:
        """The stage's step on one rank, without checkpointing (`local_rows` at least the two traced chunks of 3)."""
        local_rows = max(1, stage.batch_size // self.hardware.ranks)
        return StepShape(
            frames=config.model.x_encoder.num_frames,
            local_rows=max(local_rows, 6),
            global_batch=max(stage.batch_size, 6 * self.hardware.ranks),
            query_tokens=self.lengths.query_tokens if _has_queries(stage) else 0,
            text_tokens=min(self.lengths.text_tokens, config.model.y_encoder.max_length),
            checkpointing=False,
            bf16=self.bf16,
            online_features=config.features == "online",
        )

    def plan_stage(self, stage: StageConfig, config: TrainConfig) -> StagePlan:
        hardware, ranks = self.hardware, self.hardware.ranks
        frames = config.model.x_encoder.num_frames
        local_rows = max(1, stage.batch_size // ranks)
        base = self.stage_shape(stage, config)
        plan = StagePlan(
            stage.name, frames, stage.batch_size, stage.steps, ranks, local_rows, stage.micro_batch_size, None, None
        )
        wanted = min(EFFICIENT_MICRO_BATCH, local_rows)
        sharding = [False, True] if ranks > 1 else [False]
        for fsdp in sharding:
            for checkpointing in (False, True):
                setting = self._setting(replace(base, checkpointing=checkpointing), fsdp, local_rows)
                plan.tried.append(setting)
                if setting.micro_batch >= wanted:
                    plan.chosen = setting
                    break
            if plan.chosen:
                break
        if plan.chosen is None:
            best = max(plan.tried, key=lambda s: (s.micro_batch, -s.peak))
            plan.chosen = best if best.micro_batch else None
        if stage.micro_batch_size:
            shape = replace(base, checkpointing=config.gradient_checkpointing)
            held, step = _rank_weights(self.weights, config.sharding == "fsdp", ranks)
            micro = min(stage.micro_batch_size, local_rows)
            needed = held + max(self.profile(shape).peak(micro, math.ceil(local_rows / micro)), step)
            plan.configured_fits = needed <= hardware.usable
        plan.advice = self._advice(plan)
        checkpointing = plan.chosen.checkpointing if plan.chosen else True
        forward = self.flops(self.forward_shape(stage, config))
        plan.flops_per_sample = training_flops_per_sample(self.spec, forward, checkpointing)
        plan.gpu_hours = (
            stage.steps * stage.batch_size * plan.flops_per_sample / (hardware.peak_flops * hardware.utilisation) / 3600
        )
        return plan

    def _advice(self, plan: StagePlan) -> str:
        if plan.global_batch % plan.ranks:
            return f"the batch of {plan.global_batch} does not divide by {plan.ranks} GPUs: the trainer refuses it"
        if plan.chosen and plan.chosen.micro_batch >= min(EFFICIENT_MICRO_BATCH, plan.local_rows):
            return ""
        leanest = min(plan.tried, key=lambda s: s.peak)
        over = leanest.peak - self.hardware.usable
        if plan.chosen:
            return (
                f"only {plan.chosen.micro_batch} sample(s) per micro-batch fit: a GPU with more memory, or a "
                "smaller model, would run it faster"
            )
        # FSDP divides the trained weights and AdamW's moments: the ranks at which they shrink enough
        weights = self.weights
        shardable = weights.trained + weights.adamw_moments
        unsharded = leanest.peak - leanest.weights + weights.frozen + 2 * weights.largest_trained_layer
        room = self.hardware.usable - unsharded
        ranks = math.ceil(shardable / room) if room > 0 else None
        what = f"does not fit: {over / 1e9:.1f} GB over at one sample with checkpointing"
        if ranks is not None:
            return f"{what}; FSDP over {ranks} or more GPUs would fit"
        return f"{what}; even fully sharded the step needs {unsharded / 1e9:.1f} GB: use GPUs with more memory"


def plan_recipe(
    spec: ModelSpec,
    configs: list[TrainConfig],
    hardware: Hardware,
    lengths: Lengths = Lengths(),
    bf16: bool = True,
    known: KeptTraces | None = None,
) -> list[StagePlan]:
    """Every stage of every config (each config's model is `spec`'s, at the config's frame count); pass-2 profiles
    from `known` (by default the package's table) or traced."""
    planner = Planner(spec, hardware, lengths, bf16, known)
    return [planner.plan_stage(stage, config) for config in configs for stage in config.stages]
