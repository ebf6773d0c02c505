"""The checkpoint a metric prefers: `best/` beside `final/`, chosen on held-out data, never by training loss.

A run with `best_metric` set scores the model every `eval_every` steps (and at the end of each stage) on
its val manifest, and writes the model to `best/` (atomically, with `best.json`: metric, value, stage,
step) whenever the score beats every earlier one. The metric is either a validation figure the loop
logs anyway (`val_caption_top1`, `val_vqa_loss`, ...: in-batch, cheap) or, with the prefix `eval.`, any
figure of the evaluation suite on the val manifest, named by its path in `vljepa eval`'s output
(`eval.retrieval.exact.t2v_R@1`, `eval.vqa.accuracy`, ...): the same engine as every reported figure.
A resumed run reads the best value so far from `best/best.json`, so stopping never resets it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_directory
from ..errors import ConfigError

BEST_DIR = "best"
BEST_FILE = "best.json"
EVAL_PREFIX = "eval."


def metric_value(metrics: dict, name: str) -> float:
    """The number at the dotted path `name` in nested `metrics`; a `ConfigError` naming what exists otherwise."""
    value = metrics
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            found = sorted(value) if isinstance(value, dict) else []
            raise ConfigError(f"best_metric: no figure {name!r} here; at {part!r} there are {found}")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"best_metric: {name!r} is {value!r}, not a number")
    return float(value)


@dataclass
class BestCheckpoint:
    """The best score so far of `metric` (None: nothing saved yet) and where its model is kept."""

    directory: Path
    metric: str
    mode: str  # "max" or "min"
    value: float | None = None

    @classmethod
    def resume(cls, out_dir: Path, metric: str, mode: str) -> BestCheckpoint:
        """The best checkpoint of `out_dir` so far; one kept by another metric or mode is not a rival."""
        best = cls(out_dir / BEST_DIR, metric, mode)
        record = best.directory / BEST_FILE
        if record.is_file():
            saved = json.loads(record.read_text())
            if saved.get("metric") == metric and saved.get("mode") == mode:
                best.value = float(saved["value"])
        return best

    def improves(self, value: float) -> bool:
        if self.value is None:
            return True
        return value > self.value if self.mode == "max" else value < self.value

    def offer(self, value: float, position: dict, write_weights: Callable[[Path], None]) -> bool:
        """Keep the model (written by `write_weights(folder)`) when `value` beats the best; True if kept."""
        if not self.improves(value):
            return False
        record = {"metric": self.metric, "mode": self.mode, "value": value, **position}

        def write(folder: Path) -> None:
            write_weights(folder)
            (folder / BEST_FILE).write_text(json.dumps(record, indent=2))

        atomic_directory(self.directory, write)
        self.value = value
        return True
