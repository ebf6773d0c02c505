"""The `vljepa` command group: every command, registered here from the module of its group, in `--help` order.

Expected errors (a `VljepaError`: a bad config value, an unreadable video, a malformed manifest; or a
user-given path that is missing, a folder, or unreadable) reach the user as one line on stderr,
`error: <message>`, with exit code 2; `--debug` or VLJEPA_DEBUG=1 shows their traceback. Any other
exception is a bug and keeps its traceback. Commands check the paths they are given before loading a model.
"""

from __future__ import annotations

import os
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from ..errors import VljepaError
from . import evaluation, models, tasks, training
from .benchmark import app as benchmark_app
from .export import export_app
from .index import index_app, search_command
from .serve import serve_command
from .shard import shard_command

EXPECTED_ERRORS = (VljepaError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _one_line(error: Exception) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split())


class _Commands(TyperGroup):
    """The command group: turns expected errors into one `error:` line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as error:
            if ctx.params.get("debug") or os.environ.get("VLJEPA_DEBUG", "") not in ("", "0"):
                raise
            typer.echo(f"error: {_one_line(error)}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="VL-JEPA: predict the embedding of the answer, decode only when asked.",
)


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of expected errors too (also: VLJEPA_DEBUG=1).")
    ] = False,
):
    """VL-JEPA: predict the embedding of the answer, decode only when asked."""


COMMANDS = {  # name -> function, in the order `vljepa --help` lists them
    "world": training.world,
    "train": training.train,
    "train-decoder": training.train_decoder_command,
    "eval": evaluation.evaluate,
    "classify": tasks.classify,
    "retrieve": tasks.retrieve,
    "search": search_command,
    "ask": tasks.ask,
    "caption": tasks.caption,
    "stream": tasks.stream,
    "demo": training.demo,
    "pretrain-encoder": training.pretrain_encoder_command,
    "probe": evaluation.probe,
    "list-models": models.list_models_command,
    "info": models.info,
    "card": models.card,
    "plan": models.plan,
    "convert-vjepa2": models.convert_vjepa2_command,
    "serve": serve_command,
    "shard": shard_command,
}
for name, function in COMMANDS.items():
    app.command(name)(function)
app.add_typer(index_app, name="index")
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(export_app, name="export")
