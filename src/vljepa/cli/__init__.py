"""The `vljepa` command line (`vljepa = "vljepa.cli:app"`, or `python -m vljepa.cli`): the typer `app` and its
commands (`main`), what every command does first (`support`: path checks, quiet model loading), and the commands
registered on it from their own modules: `vljepa benchmark` (`benchmark`), `vljepa index` and `vljepa search`
(`index`), `vljepa shard` (`shard`) and `vljepa serve` (`serve`, over the HTTP app of `vljepa.serve`).
"""

from .main import app

__all__ = ["app"]
