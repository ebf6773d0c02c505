"""`vljepa export onnx`: a trained model's inference graphs for onnxruntime (`deploy/export.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .support import ModelOption, existing_folder, quiet_loading

export_app = typer.Typer(no_args_is_help=True, help="Export a trained model for runtimes without PyTorch.")


@export_app.command("onnx")
def export_onnx_command(
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the graphs, tokenizers and sidecar into.")],
    int8: Annotated[
        bool, typer.Option("--int8", help="Quantise the X-encoder and predictor to int8 weights (dynamic).")
    ] = False,
    labels: Annotated[
        str | None,
        typer.Option(help="Class names to embed once into the export: comma-separated, or @file with one per line."),
    ] = None,
):
    """Write ONNX graphs of the X-encoder, predictor, Y-encoder and Y-decoder step, checked against PyTorch, with
    a sidecar; `vljepa classify/ask/caption --model OUT` then run them through onnxruntime."""
    from ..deploy.export import export_onnx

    existing_folder(model)
    names = (
        (Path(labels[1:]).read_text().splitlines() if labels.startswith("@") else labels.split(",")) if labels else []
    )
    quiet_loading()
    folder = export_onnx(model, out, int8=int8, labels=names)
    typer.echo(f"ONNX export ({'int8' if int8 else 'fp32'}) in {folder}: vljepa classify VIDEO --model {folder} ...")
