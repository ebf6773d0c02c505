"""Experiment trackers: what a run writes to `metrics.jsonl`, also sent to TensorBoard and W&B (`report_to`).

Every numeric value of a metrics entry becomes a scalar under its own key at the entry's `global_step`:
the loss, LR, gradient norm, samples/s, prediction spread and temperature, each validation or evaluation
figure under its suite name (`val_...`, `eval.retrieval...`), and `best` when a new best checkpoint is kept.
Texts (stage, precision) are not scalars; the run's config and what `auto` resolved to are logged once, as
TensorBoard text and as W&B's run config. At the end of each stage the run's learning curves
(`substrate/curves.py`) are logged as an image.
- TensorBoard (`torch.utils.tensorboard`, the `tensorboard` package): event files in `<out_dir>/tensorboard`.
  A resumed run writes into the same folder and purges the steps after its checkpoint, which the
  interrupted process may have logged, so the curves read as one run (as `metrics.jsonl` is cut back).
- W&B (`wandb`): a run in `<out_dir>/wandb`; its id is kept in `<out_dir>/wandb-run-id`, so a resumed run
  continues the same W&B run. The mode is `WANDB_MODE` when set, else online with an API key
  (`WANDB_API_KEY`) and offline without one (then `wandb sync <out_dir>/wandb/offline-run-*` uploads it).
The Y-decoder's training (`train/decoder.py`) sends its per-step log the same way, into `<out_dir>_logs/`.
Neither package is a dependency of vljepa: `pip install "vljepa[tensorboard]"` or `"vljepa[wandb]"`; a
config asking for a missing one is refused when it is loaded (`config.check_report_to`). Only the process
that writes `metrics.jsonl` (rank 0) reports.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

import numpy as np

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
WANDB_ID_FILE = "wandb-run-id"


POSITION_KEYS = ("global_step", "step")  # where an entry is, not what it measures


def scalars(entry: dict) -> dict[str, float]:
    """The finite numeric values of a metrics entry (its position, booleans and texts left out)."""
    return {
        key: float(value)
        for key, value in entry.items()
        if key not in POSITION_KEYS and isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    }


class Trackers:
    """The trackers of one run: `log(entry, step)` each metrics entry, `close()` at the end."""

    def __init__(self, report_to: Sequence[str], out_dir: Path, resume_step: int | None, config: dict):
        self.tensorboard = self.wandb = None
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tensorboard = SummaryWriter(str(out_dir / TENSORBOARD_DIR), purge_step=purge)
            self.tensorboard.add_text("config", f"```json\n{json.dumps(config, indent=2)}\n```", global_step=0)
        if "wandb" in report_to:
            import wandb

            id_file = out_dir / WANDB_ID_FILE
            if resume_step is None or not id_file.is_file():
                id_file.write_text(uuid.uuid4().hex[:12])
            mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
            (out_dir / WANDB_DIR).mkdir(parents=True, exist_ok=True)
            self.wandb = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "vljepa"),
                name=out_dir.name,
                id=id_file.read_text().strip(),
                resume="allow",
                dir=str(out_dir),
                config=config,
                mode=mode,
            )

    def log(self, entry: dict, step: int) -> None:
        values = scalars(entry)
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, global_step=step)
            self.tensorboard.flush()
        if self.wandb is not None:
            self.wandb.log(values, step=step)

    def image(self, tag: str, png: Path, step: int) -> None:
        if self.tensorboard is not None:
            from PIL import Image

            pixels = np.asarray(Image.open(png).convert("RGB"))
            self.tensorboard.add_image(tag, pixels, global_step=step, dataformats="HWC")
            self.tensorboard.flush()
        if self.wandb is not None:
            import wandb

            self.wandb.log({tag: wandb.Image(str(png))}, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
