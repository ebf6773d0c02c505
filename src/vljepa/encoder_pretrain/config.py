"""Typed config of V-JEPA pretraining of the X-encoder (`vljepa pretrain-encoder`).

V-JEPA: ViT-L/16 encoder, a 12-layer 384-wide predictor, two mask generators per clip ("short-range":
8 blocks of 15% of the frame; "long-range": 2 blocks of 70%; every block spans the whole clip in
time), AdamW with warmup + cosine, EMA momentum 0.998 -> 1.0.
Ours: the same objective at the size of the demo's X-encoder (`XEncoderConfig`: 32 px, patch 8,
tubelet 2, 8 frames, 4 layers, width 192, so the tiny default pretrains exactly the encoder the demo
uses), a narrow predictor (width 96, 4 layers), the paper's two mask generators as data
(`masks`), and I-JEPA's momentum 0.996 -> 1.0 (a shorter run needs a faster-moving target early).
The YAML a run used is saved beside its checkpoints, as for `vljepa train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Bf16Setting, ReportTo, XEncoderConfig, check_device, check_report_to, load_config
from ..core.config_loader import (
    CheckedConfig,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    UnitInterval,
)
from ..errors import ConfigError

Pair = tuple[float, float]  # (low, high) of a sampled range


def _check_ordered(name: str, pair: Pair) -> None:
    if pair[0] > pair[1]:
        raise ConfigError(f"{name}: the first value (low) must not exceed the second (high), got {list(pair)}")


@dataclass
class MaskConfig(CheckedConfig):
    """One mask generator: `num_blocks` blocks of one sampled size per batch, placed per clip.
    Scales are fractions of the token grid: `spatial_scale` of the (H, W) area, `temporal_scale` of
    the time steps (1.0 = the block spans the whole clip, as V-JEPA's masks do)."""

    num_blocks: PositiveInt = 8
    spatial_scale: tuple[Fraction, Fraction] = (0.15, 0.15)
    temporal_scale: tuple[Fraction, Fraction] = (1.0, 1.0)
    aspect_ratio: tuple[PositiveFloat, PositiveFloat] = (0.75, 1.5)

    def check(self) -> None:
        for name in ("spatial_scale", "temporal_scale", "aspect_ratio"):
            _check_ordered(name, getattr(self, name))


@dataclass
class PretrainPredictorConfig(CheckedConfig):
    """The VJEPA2 predictor (transformers `VJEPA2Predictor`): mask tokens + RoPE transformer blocks."""

    hidden_size: PositiveInt = 96
    num_layers: PositiveInt = 4
    num_heads: PositiveInt = 3


@dataclass
class EncoderPretrainConfig(CheckedConfig):
    """`data`: manifests (their videos; every other field is ignored) and/or folders of videos; `world_clips`
    adds that many distinct clips of the built-in world (seed `world_seed`), rendered straight into memory.
    `x_encoder`: the architecture and starting weights (seeded random, or `path` to continue from a
    VJEPA2 checkpoint). `ema`: target momentum, linear from the first to the second value."""

    data: list[str] = field(default_factory=lambda: ["world/train.jsonl"])
    world_clips: NonNegativeInt = 0  # clips rendered from the built-in world in memory, besides `data`
    world_seed: NonNegativeInt = 1  # their world's seed: not the demo world's 0, so no clip is one it evaluates on
    out_dir: str = "runs/encoder-pretrain"
    seed: NonNegativeInt = 0
    steps: PositiveInt = 600
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 5e-4
    warmup_steps: NonNegativeInt = 100
    weight_decay: NonNegativeFloat = 0.04
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)
    grad_clip: PositiveFloat = 10.0
    ema: tuple[Fraction, Fraction] = (0.996, 1.0)
    device: str = "auto"
    bf16: Bf16Setting = "auto"  # bf16 autocast where the hardware computes it natively (core/precision.py)
    log_every: PositiveInt = 20
    save_every: PositiveInt = 500
    report_to: ReportTo = field(default_factory=list)  # experiment trackers besides metrics.jsonl: tensorboard, wandb
    collapse_threshold: NonNegativeFloat = 0.05
    content_weighting: UnitInterval = 0.0  # 0: V-JEPA's plain L1 mean; up to 1: weight target tokens by pixel spread
    x_encoder: XEncoderConfig = field(default_factory=XEncoderConfig)
    predictor: PretrainPredictorConfig = field(default_factory=PretrainPredictorConfig)
    masks: list[MaskConfig] = field(
        default_factory=lambda: [
            MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15)),  # short-range
            MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7)),  # long-range
        ]
    )

    def check(self) -> None:
        check_report_to(self.report_to)
        check_device(self.device)
        _check_ordered("ema", self.ema)
        if not self.data and not self.world_clips:
            raise ConfigError("data: at least one manifest or video folder is needed (or world_clips > 0)")
        if not self.masks:
            raise ConfigError("masks: at least one mask generator is needed")


def load_encoder_pretrain_config(path: str | Path | None = None, overrides: list[str] = ()) -> EncoderPretrainConfig:
    """Defaults <- YAML file <- `key=value` overrides (e.g. `masks.0.num_blocks=4`)."""
    return load_config(EncoderPretrainConfig, path, overrides)
