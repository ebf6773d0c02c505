"""`vljepa shard`: write a manifest's videos and records as WebDataset tar shards (layout: `data/shards.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def shard_command(
    manifest: Annotated[Path, typer.Argument(help="The JSONL manifest to shard.")],
    out: Annotated[Path, typer.Option("--out", help="Folder of the shards (00000.tar, 00001.tar, ...).")],
    max_size: Annotated[
        str, typer.Option("--max-size", help="Close a shard once it holds this much video: 1GB, 500MB, 64MiB.")
    ] = "1GB",
):
    """Write WebDataset shards from a manifest: one sample per video (its bytes and the records about it)."""
    from ..core.sizes import parse_size
    from ..data.shards import write_shards

    shards = write_shards(manifest, out, parse_size(max_size, "--max-size"))
    typer.echo(f"{len(shards)} shards in {out}: train with train_manifest={out}")
