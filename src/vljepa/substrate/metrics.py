"""A run's metrics log: one JSON object per line (`metrics.jsonl`), appended and flushed as training goes.

A fresh run starts an empty log; a resumed run cuts it back to its checkpoint's step, so that the lines an
interrupted run wrote after its last checkpoint (and a last line a kill cut short) are gone and the log
reads as one uninterrupted run. Lines are identified by their `global_step`. Each line also goes to the
run's experiment trackers, if it asks for any (`report_to`, `trackers.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from .curves import plot_learning_curves
from .trackers import Trackers

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "learning_curves.png"  # drawn at each stage's end for the trackers
TASKS_FILE = "tasks.png"  # the latest evaluation's figures, drawn at each stage's end for the trackers


def trim_metrics(path: Path, global_step: int) -> None:
    """Keep the lines at or before `global_step`; a line that does not parse (cut by a kill) is dropped."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry["global_step"] <= global_step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))


class MetricsLog:
    """`with MetricsLog(path, resume_step) as log: log.write({...})`; `resume_step=None` starts afresh,
    `enabled=False` (the other ranks of a data-parallel run) writes nothing. `report_to` names the trackers
    that see each entry too, with the run's `config` (a dict) logged once."""

    def __init__(
        self,
        path: Path,
        resume_step: int | None,
        enabled: bool = True,
        report_to: Sequence[str] = (),
        config: dict | None = None,
    ):
        self.path, self.enabled = Path(path), enabled
        self._file: IO[str] | None = None
        self._trackers: Trackers | None = None
        self._tracking = (list(report_to), resume_step, config or {})
        if not enabled:
            return
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        else:
            trim_metrics(self.path, resume_step)

    def __enter__(self) -> MetricsLog:
        if self.enabled:
            self._file = self.path.open("a")
            report_to, resume_step, config = self._tracking
            if report_to:
                self._trackers = Trackers(report_to, self.path.parent, resume_step, config)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._trackers is not None:
            self._trackers.close()
            self._trackers = None

    def stage_end(self, global_step: int, draw_tasks: Callable[[Path], None] | None = None) -> None:
        """A stage has ended: its trackers receive the run's learning curves so far, and the task plot of its
        latest evaluation (`draw_tasks(png)` draws it, when the run evaluates), as images."""
        if self._trackers is not None:
            image = self.path.with_name(CURVES_FILE)
            plot_learning_curves(self.path, image)
            self._trackers.image("learning_curves", image, global_step)
            if draw_tasks is not None:
                image = self.path.with_name(TASKS_FILE)
                draw_tasks(image)
                self._trackers.image("tasks", image, global_step)

    def write(self, entry: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()
        if self._trackers is not None:
            self._trackers.log(entry, entry["global_step"])
