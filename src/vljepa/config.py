"""Typed configs: dataclasses, loaded from YAML and overridden by `key.sub=value` strings, checked on load.

Every field is converted to its type hint and checked against the constraints the hint carries
(`PositiveInt`, `OneOf(...)`), and each class's `check` relates fields; any violation is a `ConfigError`
whose message starts with the full key path (`stages.0.lr: expected float, got 'abc'`). The checking
loader is `core/config_loader.py`: the library's own small loader, extended, rather than draccus or OmegaConf.
Either would add a dependency and a second way of declaring configs, while the range checks here would
still be needed; the loader is plain `typing` introspection of the dataclasses plus a YAML 1.2 resolver
for PyYAML, which the library already uses.

A run's full config is saved beside its checkpoints (`config.json`), so any checkpoint can be
rebuilt without the YAML that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from .core.atomic import atomic_write
from .core.compilation import check_compile_setting
from .core.config_loader import (
    CheckedConfig,
    NonNegativeFloat,
    NonNegativeInt,
    Normalise,
    OneOf,
    PositiveFloat,
    PositiveInt,
    apply_overrides,
    from_dict,
    load_config,
    merge,
    read_yaml_mapping,
)
from .core.precision import check_bf16_setting
from .errors import ConfigError, check_extra

__all__ = [
    "Bf16Setting",
    "CompileSetting",
    "ModelConfig",
    "PredictorConfig",
    "StageConfig",
    "TrainConfig",
    "XEncoderConfig",
    "YEncoderConfig",
    "apply_overrides",
    "from_dict",
    "load_config",
    "load_train_config",
    "read_config_json",
    "to_dict",
    "write_config_json",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Bf16Setting = Annotated[bool | str, Normalise(check_bf16_setting)]  # True, False or "auto" (core/precision.py)
CompileSetting = Annotated[bool | str, Normalise(check_compile_setting)]  # True, False or "auto" (core/compilation.py)
Schedule = Annotated[str, OneOf(("constant", "cosine"))]
ATTENTIONS = ("sdpa", "eager")  # transformers attention implementations the tiny models take
POOLINGS = ("mean", "query")  # what the predictor's output averages (model/predictor.py)
RUN_CONFIG_FILE = "train_config.json"  # a run's config as given and as resolved, in out_dir and each saved model
FEATURE_SOURCES = ("auto", "cache", "online")  # where training reads X-encoder tokens (TrainConfig.features)
KINDS = ("caption", "vqa", "label")  # the record kinds a stage's mixture samples (train/samples.py)
VALIDATION_METRICS = tuple(f"val_{kind}_{figure}" for kind in KINDS for figure in ("top1", "loss"))  # the loop's own
RecordKind = Annotated[str, OneOf(KINDS)]
SHARDING_MODES = ("none", "fsdp")  # how torchrun ranks hold the trained parts (TrainConfig.sharding)
LOSS_NAMES = ("infonce", "cosine", "l1", "l2")  # ModelConfig.loss: InfoNCE, or a regression (model/losses.py)


def check_heads(hidden_size: int, num_heads: int) -> None:
    """Attention splits the width into heads: a width the heads do not divide is refused, naming both."""
    if hidden_size % num_heads:
        raise ConfigError(f"num_heads: {num_heads} heads do not divide hidden_size {hidden_size}")


DEVICE_NAME = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


def check_device(name: str) -> None:
    if not DEVICE_NAME.fullmatch(name):
        raise ConfigError(f"device: expected auto, cpu, cuda, cuda:N, xpu or mps, got {name!r}")


@dataclass
class XEncoderConfig(CheckedConfig):
    """Frozen video encoder. `path` = a transformers VJEPA2 directory; None = tiny seeded random VJEPA2."""

    path: str | None = None
    seed: NonNegativeInt = 0
    hidden_size: PositiveInt = 192
    num_layers: PositiveInt = 4
    num_heads: PositiveInt = 3
    patch_size: PositiveInt = 8
    tubelet_size: PositiveInt = 2
    image_size: PositiveInt = 32
    num_frames: PositiveInt = 8
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = IMAGENET_STD

    def check(self) -> None:
        check_heads(self.hidden_size, self.num_heads)


@dataclass
class PredictorConfig(CheckedConfig):
    """Bidirectional Llama blocks. `llama_path` = any Llama checkpoint (its last `last_n_layers` layers);
    None = a randomly initialised Llama of the sizes below, with `tokenizer` for the query."""

    llama_path: str | None = None
    last_n_layers: PositiveInt = 8
    tokenizer: str | None = None  # None: the packaged MiniLM tokenizer (tiny default only)
    hidden_size: PositiveInt = 128
    num_layers: PositiveInt = 2
    num_heads: PositiveInt = 4
    intermediate_size: PositiveInt = 512
    max_query_tokens: PositiveInt = 64
    bidirectional: bool = True
    attention: Annotated[str, OneOf(ATTENTIONS)] = (
        "sdpa"  # transformers attention: "eager" is faster for tiny CPU models
    )
    pooling: Annotated[str, OneOf(POOLINGS)] = (
        "mean"  # mean: every position (the paper's); query: the query's tokens, every position without a query
    )

    def check(self) -> None:
        check_heads(self.hidden_size, self.num_heads)


@dataclass
class YEncoderConfig(CheckedConfig):
    """Text encoder + linear head. `path` = any sentence-transformers directory; None = packaged MiniLM.
    `lr_multiplier` scales the text model's LR (paper: 0.05); 0 freezes it and caches its outputs."""

    path: str | None = None
    lr_multiplier: NonNegativeFloat = 0.05
    head_lr_multiplier: NonNegativeFloat = 1.0  # the linear head's LR, x lr
    max_length: PositiveInt = 64


@dataclass
class ModelConfig(CheckedConfig):
    shared_dim: PositiveInt = 256
    loss: Annotated[str, OneOf(LOSS_NAMES)] = (
        "infonce"  # infonce | cosine | l1 | l2 (the regression losses are the paper's ablation; model/losses.py)
    )
    temperature: PositiveFloat = 0.07
    learnable_temperature: bool = False
    classification_prompt: str = "what is happening in the video?"  # the query used for label samples
    x_encoder: XEncoderConfig = field(default_factory=XEncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    y_encoder: YEncoderConfig = field(default_factory=YEncoderConfig)


@dataclass
class StageConfig(CheckedConfig):
    """One training stage. `mixture` weights the record kinds sampled: caption (query-free, the
    stage-1 objective and its replay in SFT), vqa (question -> answer), label (prompt -> class name).
    `micro_batch_size` runs the model that many samples at a time with gradient caching (the loss still
    sees the whole batch's negatives, the gradients are the whole batch's); None = the whole batch at once."""

    name: str = "pretrain"
    steps: PositiveInt = 1000
    batch_size: PositiveInt = 128
    micro_batch_size: PositiveInt | None = None
    lr: PositiveFloat = 1e-3
    schedule: Schedule = "constant"
    warmup_steps: NonNegativeInt = 0
    mixture: dict[RecordKind, NonNegativeFloat] = field(default_factory=lambda: {"caption": 1.0})

    def check(self) -> None:
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ConfigError(
                f"micro_batch_size: must be at most batch_size ({self.batch_size}), got {self.micro_batch_size}"
            )
        if sum(self.mixture.values()) <= 0:
            raise ConfigError(f"mixture: the weights must sum to more than 0, got {self.mixture}")


REPORT_TO = ("tensorboard", "wandb")  # experiment trackers; each is the name of its package and of its pip extra
ReportTo = list[Annotated[str, OneOf(REPORT_TO)]]


def check_report_to(report_to: list[str]) -> None:
    """Refuse a tracker whose package is not installed (a `MissingExtraError` naming the extra), before any work."""
    for tracker in report_to:
        check_extra(tracker, tracker, f"report_to: {tracker}")


@dataclass
class TrainConfig(CheckedConfig):
    """`train_manifest`/`val_manifest`: a JSONL manifest or a shard source (a `.tar`, a folder of them, a brace
    pattern such as `data/{00000..00099}.tar`, or shards streamed through webdataset such as
    `https://host/data/{00000..00099}.tar` or `pipe:curl -s ...`; `data/shards.py`).
    `features` says where the frozen X-encoder's tokens come from. `cache`: every training clip is encoded
    once through the feature cache before the first step and a step gathers its rows from a table in memory
    (cheap steps, but disk and memory grow with the dataset). `online`: `num_workers` loader processes per
    rank read and decode the clips and the encoder runs inside each step (`train/loader.py`): memory stays
    that of a batch at any dataset size, and every step pays for the encoder. `auto` (the default) chooses
    `cache` for a `.jsonl` manifest, the small datasets the demo and tests train on, where encoding each clip
    once is far cheaper than once per visit, and `online` for shards, the format of datasets too large to
    cache. The validation set is small and always goes through the feature cache (a shard val source has its
    videos extracted once, see `load_manifest`). `shuffle_buffer` is each loader stream's buffer, in videos."""

    train_manifest: str = ""
    val_manifest: str | None = None
    features: Annotated[str, OneOf(FEATURE_SOURCES)] = "auto"
    num_workers: NonNegativeInt = 2  # loader worker processes per rank (features=online); 0 reads in the main process
    shuffle_buffer: PositiveInt = 256
    out_dir: str = "runs/vljepa"
    cache_dir: str | None = None  # X-encoder feature cache; default: $VLJEPA_CACHE_DIR or ~/.cache/vljepa/features
    seed: NonNegativeInt = 0
    weight_decay: NonNegativeFloat = 0.05
    grad_clip: PositiveFloat = 1.0
    device: str = "auto"  # auto = cuda if available, else cpu
    bf16: Bf16Setting = "auto"  # bf16 autocast: auto = where the hardware computes bf16 natively (core/precision.py)
    compile: CompileSetting = False  # torch.compile the predictor to train; auto: where it works (core/compilation.py)
    log_every: PositiveInt = 20
    eval_every: PositiveInt = 100  # validation loss / in-batch retrieval on the val manifest
    best_metric: str | None = None  # keep best/ by this val figure, e.g. val_caption_top1, eval.retrieval.exact.t2v_R@1
    best_mode: Annotated[str, OneOf(("max", "min"))] = "max"  # whether a higher or a lower best_metric is better
    save_every: PositiveInt = 500
    report_to: ReportTo = field(default_factory=list)  # experiment trackers besides metrics.jsonl: tensorboard, wandb
    allow_config_changes: bool = False  # resume a run with its safe changes (train/run_contract.py), recorded
    collapse_threshold: NonNegativeFloat = 0.05
    init_from: str | None = (
        None  # a previous run's model directory (its final/) to start from; a resumable checkpoint wins
    )
    gradient_checkpointing: bool = (
        False  # recompute the predictor's (and a training text model's) activations in backward
    )
    sharding: Annotated[str, OneOf(SHARDING_MODES)] = (
        "none"  # under torchrun: none (every rank holds the whole model) | fsdp (trained parts sharded; train/sharding.py)
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list[StageConfig] = field(
        default_factory=lambda: [
            StageConfig(name="pretrain", steps=1000, schedule="constant", mixture={"caption": 1.0}),
            StageConfig(
                name="sft",
                steps=1000,
                schedule="cosine",
                warmup_steps=50,
                mixture={"vqa": 0.5, "label": 0.2, "caption": 0.3},
            ),
        ]
    )

    def check(self) -> None:
        check_report_to(self.report_to)
        check_device(self.device)
        if not self.stages:
            raise ConfigError("stages: at least one stage is needed")
        if self.best_metric and not self.val_manifest:
            raise ConfigError(f"best_metric: {self.best_metric!r} is scored on the val manifest; set val_manifest")
        if self.best_metric and not self.best_metric.startswith("eval.") and self.best_metric not in VALIDATION_METRICS:
            raise ConfigError(
                f"best_metric: expected one of {list(VALIDATION_METRICS)} or eval.<figure of vljepa eval>, "
                f"got {self.best_metric!r}"
            )


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


MODELS_DIR = Path(__file__).parent / "configs" / "models"  # one YAML per named model (`vljepa list-models`)


def named_model_config(name: str) -> ModelConfig:
    """The `ModelConfig` of a named model: its packaged YAML, `configs/models/NAME.yaml`."""
    path = MODELS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))
        raise ConfigError(f"model.name: unknown model {name!r}; named models: {known}")
    return load_config(ModelConfig, path)


def load_train_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults <- YAML file <- overrides, checked into a TrainConfig. In the YAML, `model: {name: NAME, ...}`
    starts the model from a named model (`named_model_config`) and lays the section's other fields over it."""
    data = dataclasses.asdict(TrainConfig())
    if path is not None:
        mapping = dict(read_yaml_mapping(path))
        model = mapping.get("model")
        if isinstance(model, dict) and "name" in model:
            data["model"] = dataclasses.asdict(named_model_config(model["name"]))
            mapping["model"] = {key: value for key, value in model.items() if key != "name"}
        merge(TrainConfig, data, mapping)
    return from_dict(TrainConfig, apply_overrides(data, list(overrides)))


def save_json(config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2))


def write_config_json(config, path: str | Path) -> None:
    """Atomically write a config as JSON (the `config.json` beside a weight file)."""
    atomic_write(path, lambda tmp: save_json(config, tmp))


def read_config_json(cls: type, path: str | Path, what: str):
    """Read a `write_config_json` file into a `cls`; `what` names the expected directory in the error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent}: no {path.name}; not a {what} directory")
    try:
        return from_dict(cls, json.loads(path.read_text()))
    except ConfigError as error:
        error.args = (f"{path}: {error}",)
        raise
