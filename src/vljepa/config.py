"""Typed configs: dataclasses, loaded from YAML and overridden by `key.sub=value` strings.

A run's full config is saved beside its checkpoints (`config.json`), so any checkpoint can be
rebuilt without the YAML that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .atomic import atomic_write
from .losses import check_loss_name
from .precision import check_bf16_setting

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class XEncoderConfig:
    """Frozen video encoder. `path` = a transformers VJEPA2 directory; None = tiny seeded random VJEPA2."""

    path: str | None = None
    seed: int = 0
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 3
    patch_size: int = 8
    tubelet_size: int = 2
    image_size: int = 32
    num_frames: int = 8
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class PredictorConfig:
    """Bidirectional Llama blocks. `llama_path` = any Llama checkpoint (its last `last_n_layers` layers);
    None = a randomly initialised Llama of the sizes below, with `tokenizer` for the query."""

    llama_path: str | None = None
    last_n_layers: int = 8
    tokenizer: str | None = None  # None: the packaged MiniLM tokenizer (tiny default only)
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    max_query_tokens: int = 64
    bidirectional: bool = True
    attention: str = "sdpa"  # transformers attention implementation: "sdpa" or "eager" (faster for the tiny CPU model)


@dataclass
class YEncoderConfig:
    """Text encoder + linear head. `path` = any sentence-transformers directory; None = packaged MiniLM.
    `lr_multiplier` scales the text model's LR (paper: 0.05); 0 freezes it and caches its outputs."""

    path: str | None = None
    lr_multiplier: float = 0.05
    max_length: int = 64


@dataclass
class ModelConfig:
    shared_dim: int = 256
    loss: str = "infonce"  # infonce | cosine | l1 | l2 (the regression losses are the paper's ablation; losses.py)
    temperature: float = 0.07
    learnable_temperature: bool = False
    classification_prompt: str = "what is happening in the video?"  # the query used for label samples
    x_encoder: XEncoderConfig = field(default_factory=XEncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    y_encoder: YEncoderConfig = field(default_factory=YEncoderConfig)

    def __post_init__(self) -> None:
        check_loss_name(self.loss)


@dataclass
class StageConfig:
    """One training stage. `mixture` weights the record kinds sampled: caption (query-free, the
    stage-1 objective and its replay in SFT), vqa (question -> answer), label (prompt -> class name).
    `micro_batch_size` runs the model that many samples at a time with gradient caching (the loss still
    sees the whole batch's negatives, the gradients are the whole batch's); None = the whole batch at once."""

    name: str = "pretrain"
    steps: int = 1000
    batch_size: int = 128
    micro_batch_size: int | None = None
    lr: float = 1e-3
    schedule: str = "constant"  # constant | cosine
    warmup_steps: int = 0
    mixture: dict[str, float] = field(default_factory=lambda: {"caption": 1.0})


@dataclass
class TrainConfig:
    train_manifest: str = ""
    val_manifest: str | None = None
    out_dir: str = "runs/vljepa"
    cache_dir: str | None = None  # X-encoder feature cache; default: $VLJEPA_CACHE_DIR or ~/.cache/vljepa/features
    seed: int = 0
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    device: str = "auto"  # auto = cuda if available, else cpu
    bf16: bool | str = "auto"  # bf16 autocast: auto = where the hardware computes bf16 natively (precision.py)
    log_every: int = 20
    eval_every: int = 100  # validation loss / in-batch retrieval on the val manifest
    save_every: int = 500
    collapse_threshold: float = 0.05
    init_from: str | None = None  # a previous run's model directory (its final/) to start from; a resumable checkpoint wins
    gradient_checkpointing: bool = False  # recompute the predictor's (and a training text model's) activations in backward
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [
        StageConfig(name="pretrain", steps=1000, schedule="constant", mixture={"caption": 1.0}),
        StageConfig(name="sft", steps=1000, schedule="cosine", warmup_steps=50,
                    mixture={"vqa": 0.5, "label": 0.2, "caption": 0.3}),
    ])

    def __post_init__(self) -> None:
        self.bf16 = check_bf16_setting(self.bf16)


def from_dict(cls: type, data: dict):
    """Build a (nested) dataclass from a plain dict, rejecting unknown keys."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(hint, value):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_coerce(item, v) for v in value]
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict; `stages.1.steps=5` indexes lists."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = yaml.safe_load(raw)
        else:
            node[last] = yaml.safe_load(raw)
    return data


def load_config(cls: type, path: str | Path | None = None, overrides: list[str] = ()):
    """Defaults of the dataclass `cls` <- YAML file <- overrides, validated into a `cls`."""
    data = to_dict(cls())
    if path is not None:
        _merge(data, yaml.safe_load(Path(path).read_text()) or {})
    return from_dict(cls, apply_overrides(data, list(overrides)))


def load_train_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults <- YAML file <- overrides, validated into a TrainConfig."""
    return load_config(TrainConfig, path, overrides)


def _merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "mixture":
            _merge(base[key], value)
        else:
            base[key] = value


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
    return from_dict(cls, json.loads(path.read_text()))
