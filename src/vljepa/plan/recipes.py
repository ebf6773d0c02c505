"""What `vljepa plan` plans: a registered model under the paper's four stages, or a training YAML's stages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import MODELS_DIR, ModelConfig, TrainConfig, load_train_config
from ..errors import ConfigError
from ..registry import Architectures, ModelSpec, get_model_spec, list_models

PAPER_RECIPE = sorted((MODELS_DIR.parent / "paper").glob("*.yaml"))  # the paper's four stages, in order


def _same_model(a: ModelConfig, b: ModelConfig) -> bool:
    """Equal but for the frame count, which each stage sets."""
    frames = dataclasses.replace(b.x_encoder, num_frames=a.x_encoder.num_frames)
    return a == dataclasses.replace(b, x_encoder=frames)


def _with_frames(model: ModelConfig, frames: int) -> ModelConfig:
    return dataclasses.replace(model, x_encoder=dataclasses.replace(model.x_encoder, num_frames=frames))


def resolve(target: str) -> tuple[ModelSpec, list[TrainConfig]]:
    """`target` is a registered model name (planned under the paper's stages, each at its frame count) or a
    training YAML (its stages; the architectures of a registered model equal to its model, else read from the
    checkpoints' config files)."""
    if target in list_models():
        spec = get_model_spec(target)
        configs = []
        for path in PAPER_RECIPE:
            config = load_train_config(path)
            configs.append(
                dataclasses.replace(config, model=_with_frames(spec.config, config.model.x_encoder.num_frames))
            )
        return spec, configs
    path = Path(target)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        raise ConfigError(
            f"{target!r} is neither a registered model ({', '.join(list_models())}) nor a training YAML file"
        )
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    config = load_train_config(path)
    registered = next(
        (get_model_spec(n) for n in list_models() if _same_model(config.model, get_model_spec(n).config)), None
    )
    architectures = registered.architectures if registered else Architectures()
    description = registered.description if registered else str(path)
    return ModelSpec(description, config.model, architectures), [config]
