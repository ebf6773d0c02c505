"""`vljepa list-models`, `info` and `convert-vjepa2`: the registered models, their sizes, and upstream checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .support import existing_file, quiet_loading


def list_models_command():
    """Registered model names (use with `vljepa info`, or `vljepa.registry.get_model_config(name)` in Python)."""
    from ..registry import get_model_spec, list_models

    for name in list_models():
        typer.echo(f"{name:14s} {get_model_spec(name).description}")


def info(
    model: Annotated[str, typer.Argument(help="A registered model name (see `vljepa list-models`).")],
    frames: Annotated[int | None, typer.Option(help="Input frames (default: the model's).")] = None,
    query_tokens: Annotated[int, typer.Option(help="Query length for the FLOP count (0 = caption pretraining).")] = 0,
    text_tokens: Annotated[int, typer.Option(help="Target text length for the FLOP count.")] = 32,
):
    """Parameters (trainable vs frozen) and forward FLOPs of each part, built on the meta device (no weights)."""
    from rich.console import Console

    from ..model.info import info_table, model_info

    quiet_loading()
    Console().print(info_table(model_info(model, frames, query_tokens, text_tokens)))


def convert_vjepa2_command(
    checkpoint: Annotated[Path, typer.Argument(help="Upstream facebookresearch/vjepa2 checkpoint (.pt).")],
    out_dir: Annotated[Path, typer.Argument(help="Output transformers VJEPA2 directory.")],
    key: Annotated[str, typer.Option(help="Entry of the checkpoint dict holding the encoder.")] = "target_encoder",
    num_heads: Annotated[int | None, typer.Option(help="Attention heads (default: V-JEPA 2's for the width).")] = None,
    image_size: Annotated[int, typer.Option(help="Crop size the encoder was trained at.")] = 256,
    frames: Annotated[int, typer.Option(help="Frames per clip the encoder was trained at.")] = 64,
):
    """Convert an upstream V-JEPA 2 encoder checkpoint to a transformers VJEPA2 directory (for model.x_encoder.path)."""
    from ..model.convert import convert_vjepa2

    existing_file(checkpoint)
    typer.echo(f"encoder: {convert_vjepa2(checkpoint, out_dir, key, num_heads, image_size, frames)}")
