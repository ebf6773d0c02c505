"""The `vljepa` command line (`vljepa = "vljepa.cli:app"`, or `python -m vljepa.cli`).

`main`: the typer `app`, its error handling and the registration of every command, in `--help` order.
One module per command group: `training` (world, train, train-decoder, demo, pretrain-encoder),
`evaluation` (eval, probe), `tasks` (classify, retrieve, ask, caption, stream), `models` (list-models,
info, convert-vjepa2), `index` (index, search), `benchmark`, `serve` and `shard`. `support`: what every
command does first (path checks, quiet model loading) and the shared `--model` option.
"""

from .main import app

__all__ = ["app"]
