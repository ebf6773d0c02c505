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

from ..config import XEncoderConfig, load_config
from ..precision import check_bf16_setting


@dataclass
class MaskConfig:
    """One mask generator: `num_blocks` blocks of one sampled size per batch, placed per clip.
    Scales are fractions of the token grid: `spatial_scale` of the (H, W) area, `temporal_scale` of
    the time steps (1.0 = the block spans the whole clip, as V-JEPA's masks do)."""

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)


@dataclass
class PretrainPredictorConfig:
    """The VJEPA2 predictor (transformers `VJEPA2Predictor`): mask tokens + RoPE transformer blocks."""

    hidden_size: int = 96
    num_layers: int = 4
    num_heads: int = 3


@dataclass
class EncoderPretrainConfig:
    """`data`: manifests (their videos; every other field is ignored) and/or folders of videos.
    `x_encoder`: the architecture and starting weights (seeded random, or `path` to continue from a
    VJEPA2 checkpoint). `ema`: target momentum, linear from the first to the second value."""

    data: list[str] = field(default_factory=lambda: ["world/train.jsonl"])
    out_dir: str = "runs/encoder-pretrain"
    seed: int = 0
    steps: int = 600  # measured: longer runs degrade the features on the world (BENCHMARKS.md)
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 100
    weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 10.0
    ema: tuple[float, float] = (0.996, 1.0)
    device: str = "auto"
    bf16: bool | str = "auto"  # bf16 autocast where the hardware computes it natively (precision.py)
    log_every: int = 20
    save_every: int = 500
    collapse_threshold: float = 0.05
    x_encoder: XEncoderConfig = field(default_factory=XEncoderConfig)
    predictor: PretrainPredictorConfig = field(default_factory=PretrainPredictorConfig)
    masks: list[MaskConfig] = field(default_factory=lambda: [
        MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15)),  # short-range
        MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7)),  # long-range
    ])

    def __post_init__(self) -> None:
        self.bf16 = check_bf16_setting(self.bf16)


def load_encoder_pretrain_config(path: str | Path | None = None,
                                 overrides: list[str] = ()) -> EncoderPretrainConfig:
    """Defaults <- YAML file <- `key=value` overrides (e.g. `masks.0.num_blocks=4`)."""
    return load_config(EncoderPretrainConfig, path, overrides)
