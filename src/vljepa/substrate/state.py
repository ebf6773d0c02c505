"""One resumable training state: the files of the weights, then the optimizer, the schedule, the data
position, the random generators and the loop's position, written as one directory atomically.

Every loop that resumes writes `checkpoint/` with `save_training_state` and reads it back with
`load_training_state`; `core/atomic.py` swaps the directory in whole, so a kill at any instant leaves the
previous checkpoint or the new one (a half-filled temp folder, `checkpoint.<pid>-<id>.tmp`, is never read,
and `run_dir.py` removes it when the run resumes). The RNG state holds the CPU generator and, on CUDA, the device's; a data-parallel
run stores one per rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..core.atomic import atomic_directory, readable_directory

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.pt"


@dataclass
class RngState:
    """What a step may draw random numbers from: the CPU generator and, on CUDA, the device's."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None

    @classmethod
    def capture(cls, device: torch.device) -> RngState:
        return cls(torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None)

    def restore(self, device: torch.device) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, device)


@dataclass
class TrainingState:
    """Everything but the weights. `position` is the loop's own (e.g. stage and step); `optimizer`,
    `scheduler` and `sampler` are state dicts, None where the loop builds them afresh (a stage boundary);
    `rng` holds one `RngState` per rank."""

    position: dict[str, int]
    rng: list[RngState]
    optimizer: dict | None = None
    scheduler: dict | None = None
    sampler: dict | None = None


def save_training_state(out_dir: Path, write_weights: Callable[[Path], None], state: TrainingState) -> Path:
    """Write `<out_dir>/checkpoint/`: `write_weights(directory)` puts the weights (and any config files) in,
    then the training state; the directory replaces the previous checkpoint only once whole."""
    directory = Path(out_dir) / CHECKPOINT_DIR

    def fill(tmp: Path) -> None:
        write_weights(tmp)
        torch.save(asdict(state), tmp / STATE_FILE)

    atomic_directory(directory, fill)
    return directory


def load_training_state(out_dir: Path) -> tuple[Path, TrainingState] | None:
    """The checkpoint directory (the `.old` copy if a swap was interrupted) and its state, or None."""
    directory = readable_directory(Path(out_dir) / CHECKPOINT_DIR)
    if directory is None:
        return None
    saved = torch.load(directory / STATE_FILE, weights_only=False)
    saved["rng"] = [RngState(**rng) for rng in saved["rng"]]
    return directory, TrainingState(**saved)
