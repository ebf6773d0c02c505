"""Atomic file and directory writes: a crash leaves the old version or the new one, never half of one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)`, then rename the temp file over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def atomic_directory(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Fill a fresh temp directory, then swap it in place of `path` (the old one is kept as
    `<path>.old` until the swap is done; `readable_directory` falls back to it)."""
    path = Path(path)
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def readable_directory(path: str | Path) -> Path | None:
    """`path` if it exists, else the `.old` copy left by an interrupted swap, else None."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".old")):
        if candidate.is_dir():
            return candidate
    return None
