"""Atomic file and directory writes: a crash leaves the old version or the new one, never half of one.

A write goes to a temp name beside its target, is flushed to disk (`fsync` of the file, or of every
file in a directory), renamed over the target, and the parent directory is flushed too so that the
rename itself survives a power loss. Temp names are unique per call (process id and a random part),
so writers in several processes never write into each other's temp files.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory entry list, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(directory: Path) -> None:
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        fsync_path(file)
    for folder in sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True):
        fsync_path(folder)
    fsync_path(directory)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)`, flush it to disk, rename it over `path` and flush the directory.
    If `write` raises, the temp file is removed and `path` is untouched."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        write(tmp)
        fsync_path(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_directory(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Fill a fresh temp directory, flush it to disk, then swap it in place of `path` (the old one is
    kept as `<path>.old` until the swap is done; `readable_directory` falls back to it)."""
    path = Path(path)
    tmp, old = _temp_name(path), path.with_name(path.name + ".old")
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
    tmp.rename(path)
    fsync_path(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def readable_directory(path: str | Path) -> Path | None:
    """`path` if it exists, else the `.old` copy left by an interrupted swap, else None."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".old")):
        if candidate.is_dir():
            return candidate
    return None
