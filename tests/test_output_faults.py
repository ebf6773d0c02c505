"""Writes that cannot happen: a read-only output folder and a full disk are one error line naming the
folder, found before the expensive work where they can be, and never leave a half-written file.

The folders are real: a small tmpfs mounted read-only or nearly full (root, as CI runs); without the
right to mount, the read-only case uses file permissions instead (they bind every user but root).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_model_config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import to_dict
from vljepa.core.atomic import atomic_write, writable_folder
from vljepa.errors import OutputError

runner = CliRunner()


@contextmanager
def mounted_tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def read_only_folder(tmp_path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "1m", read_only=True):
        yield folder


def train_config(tmp_path: Path, manifest: Path, out_dir: Path) -> Path:
    config = {
        "train_manifest": str(manifest),
        "out_dir": str(out_dir),
        "cache_dir": str(tmp_path / "cache"),
        "model": to_dict(tiny_model_config()),
        "stages": [{"name": "pretrain", "steps": 2, "batch_size": 8}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_writable_folder_names_a_read_only_one(read_only_folder):
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    with pytest.raises(OutputError, match=rf"^{read_only_folder / 'run'}: cannot write here \({reason}\)$"):
        writable_folder(read_only_folder / "run")


def test_train_into_a_read_only_folder_stops_before_encoding_anything(tmp_path, clip_manifest, read_only_folder):
    out_dir = read_only_folder / "run"
    result = runner.invoke(app, ["train", "--config", str(train_config(tmp_path, clip_manifest, out_dir))])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"error: {out_dir}: cannot write here (")
    assert "Traceback" not in result.output
    assert not (tmp_path / "cache").exists()  # refused before the clips were encoded


def test_a_read_only_cache_folder_is_one_line_before_any_training(tmp_path, clip_manifest, read_only_folder):
    config = train_config(tmp_path, clip_manifest, tmp_path / "run")
    cache = read_only_folder / "cache"
    result = runner.invoke(app, ["train", "--config", str(config), f"cache_dir={cache}"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"error: {cache}: cannot write here (")
    assert "Traceback" not in result.output and not (tmp_path / "run" / "checkpoint").exists()


def test_world_into_a_read_only_folder_is_one_line(read_only_folder):
    result = runner.invoke(app, ["world", "--out", str(read_only_folder / "world"), "num_train=4"])
    assert result.exit_code == 2
    assert (
        result.output.strip().splitlines()[-1].startswith(f"error: {read_only_folder / 'world'}: cannot write here (")
    )


def test_a_write_onto_a_full_disk_says_so_and_keeps_the_previous_file(tmp_path):
    with mounted_tmpfs(tmp_path / "small", "256k") as folder:
        target = folder / "weights.pt"
        atomic_write(target, lambda tmp: torch.save({"w": torch.zeros(10)}, tmp))
        before = target.read_bytes()
        with pytest.raises(
            OutputError, match=rf"^{folder}: no space left on the device, 0\.\d MiB free; the write failed: "
        ):
            atomic_write(target, lambda tmp: torch.save({"w": torch.zeros(1_000_000)}, tmp))
        assert target.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["weights.pt"]  # no temp file left behind


def test_training_onto_a_full_disk_ends_with_one_line_saying_so(tmp_path, clip_manifest):
    with mounted_tmpfs(tmp_path / "small", "64k") as folder:
        config = train_config(tmp_path, clip_manifest, folder / "run")
        result = runner.invoke(app, ["train", "--config", str(config), "model.predictor.hidden_size=256"])
        assert result.exit_code == 2, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith(f"error: {folder / 'run'}") and "no space left on the device" in last
        assert "Traceback" not in result.output
        assert not list((folder / "run").rglob("*.tmp"))
