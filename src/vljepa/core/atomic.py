"""Atomic file and directory writes: a crash leaves the old version or the new one, never half of one.

A write goes to a temp name beside its target, is flushed to disk (`fsync` of the file, or of every
file in a directory), renamed over the target, and the parent directory is flushed too so that the
rename itself survives a power loss. Temp names are unique per call (process id and a random part),
so writers in several processes never write into each other's temp files. `exclusive_lock` serialises
read-modify-write cycles on a shared file (such as a video index's revision) across processes.
A write that fails because the disk is full is an `OutputError` saying so and naming the target: the
writers' own messages often do not (torch's is `enforce fail at inline_container.cc`), so the free space
is checked when a write fails, before its temp file is removed. `writable_folder` checks a folder can be
written before the work that will write into it starts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError

WRITE_CHECK = ".write-check"  # the name `writable_folder`'s probe files begin with
NEARLY_FULL_BYTES = 1 << 20  # a failed write with less free space than this is blamed on a full disk


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory entry list, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system holding `path` (None: unknown)."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _out_of_space(error: BaseException, folder: Path) -> OutputError | None:
    """An `OutputError` when `error` (raised while writing into `folder`) comes from a full disk, or from a
    folder that cannot be written (read-only, not permitted)."""
    if isinstance(error, OutputError) or not isinstance(error, Exception):
        return None
    if getattr(error, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM):
        return OutputError(f"{folder}: cannot write here ({error.strerror or error})")
    free = _free_bytes(folder)
    said_so = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error)
    if not said_so and (free is None or free >= NEARLY_FULL_BYTES):
        return None
    left = "" if free is None else f", {free / 2**20:.1f} MiB free"
    shown = " ".join(str(error).split())
    return OutputError(f"{folder}: no space left on the device{left}; the write failed: {shown}")


def writable_folder(path: str | Path) -> Path:
    """Create `path` (and its parents) if needed and check that a file can be written in it; an
    `OutputError` naming the folder and the reason otherwise (read-only file system, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = _temp_name(path / WRITE_CHECK)
        probe.touch()
        probe.unlink(missing_ok=True)  # a rank taking the run lock may have cleared it already
    except OSError as error:
        raise OutputError(f"{path}: cannot write here ({error.strerror or error})") from error
    return path


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
    except BaseException as error:
        full = _out_of_space(error, path.parent)
        tmp.unlink(missing_ok=True)
        if full is not None:
            raise full from error
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
    except BaseException as error:
        full = _out_of_space(error, path.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        if full is not None:
            raise full from error
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


@contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive `fcntl` lock on `path` (created if absent) for the duration of the block;
    other processes taking the same lock wait. The lock is released when the block ends or the process dies."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
