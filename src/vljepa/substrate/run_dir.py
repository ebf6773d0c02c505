"""A run's output folder, owned by one process at a time.

Two runs writing one `out_dir` would interleave their checkpoints and logs, so a run holds an exclusive
`fcntl` lock on `<out_dir>/.lock` while it trains; a second run fails at once with a `RunDirectoryInUse`
naming the folder. The kernel drops the lock when its process ends, however it ends (a `kill -9` too), so
there is no stale lock to clean up. Taking the lock also removes what an interrupted atomic write left
behind (`*.tmp` beside the checkpoint and the saved models): nothing reads them and the run is the only writer.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from types import TracebackType

from ..core.atomic import WRITE_CHECK
from ..errors import VljepaError

LOCK_FILE = ".lock"


class RunDirectoryInUse(VljepaError):
    """Another process is training into this folder."""


class RunDirectory:
    """`with RunDirectory(out_dir):` holds the folder's lock for the block (one process per folder)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> RunDirectory:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirectoryInUse(
                f"{self.path}: another run is training into this folder (it holds "
                f"{self.path / LOCK_FILE}); wait for it to end or choose another out_dir"
            ) from None
        self._fd = fd
        self.remove_interrupted_writes()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def remove_interrupted_writes(self) -> None:
        """Delete every `*.tmp` file or folder directly in the run folder (an atomic write cut short), except the
        write checks of other ranks starting beside this one; one already gone is no error."""
        for leftover in self.path.glob("*.tmp"):
            if leftover.name.startswith(WRITE_CHECK):
                continue  # another rank checking it can write here, not an interrupted write
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
