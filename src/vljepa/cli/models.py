"""`vljepa list-models`, `info`, `plan` and `convert-vjepa2`: the registered models, their sizes, what fits on
which GPUs, and upstream checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .support import existing_file, existing_folder, quiet_loading


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


def plan(
    target: Annotated[
        str, typer.Argument(help="A registered model (planned under the paper's four stages) or a training YAML.")
    ],
    gpu_memory: Annotated[str, typer.Option(help="Memory of one GPU: 80GB, 24GB, 40GiB.")] = "80GB",
    gpus: Annotated[int, typer.Option(min=1, help="GPUs per node.")] = 1,
    nodes: Annotated[int, typer.Option(min=1, help="Nodes.")] = 1,
    margin: Annotated[float, typer.Option(min=0, max=0.9, help="Fraction of the memory kept free.")] = 0.10,
    peak_tflops: Annotated[float, typer.Option(min=0.001, help="Peak TFLOP/s of one GPU (H100 SXM bf16: 989).")] = 989,
    utilisation: Annotated[float, typer.Option(min=0.01, max=1, help="Fraction of the peak the run sustains.")] = 0.40,
    text_tokens: Annotated[int, typer.Option(min=1, help="Tokens of a target text.")] = 32,
    query_tokens: Annotated[int, typer.Option(min=0, help="Tokens of a query, in stages with questions.")] = 32,
    fp32: Annotated[bool, typer.Option("--fp32", help="Plan fp32 steps instead of bf16 autocast.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
):
    """Per GPU and stage: the micro-batch, checkpointing and sharding that fit, peak memory, and GPU-hours."""
    import json

    from rich.console import Console

    from ..core.sizes import parse_size
    from ..plan.planner import Hardware, Lengths, plan_recipe
    from ..plan.recipes import resolve
    from ..plan.report import assumptions, plan_json, plan_table

    hardware = Hardware(parse_size(gpu_memory, "--gpu-memory"), gpus, nodes, margin, peak_tflops * 1e12, utilisation)
    lengths = Lengths(text_tokens, query_tokens)
    quiet_loading()
    spec, configs = resolve(target)
    plans = plan_recipe(spec, configs, hardware, lengths, bf16=not fp32)
    notes = assumptions(hardware, lengths, not fp32)
    if json_out:
        typer.echo(json.dumps(plan_json(plans, notes), indent=2))
    else:
        Console(width=200).print(plan_table(f"{target} on {hardware.ranks} x {gpu_memory}", plans, notes))


def card(
    model: Annotated[Path, typer.Argument(help="A saved model folder (e.g. runs/demo/model/final).")],
    results: Annotated[
        list[Path] | None,
        typer.Option(help="Results JSON of vljepa eval, benchmark run or demo to add to the card; repeatable."),
    ] = None,
):
    """Write the model card (README.md with Hugging Face front matter) of a model folder, adding results files."""
    from ..eval.model_card import add_results, write_card

    existing_folder(model)
    for path in results or []:
        add_results(model, existing_file(path))
    typer.echo(f"model card: {write_card(model)}")
