"""Expected errors reach the user as one `error:` line with exit code 2; `--debug` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.errors import ConfigError

runner = CliRunner()


def vljepa(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The command line in a fresh process, as a user runs it (the environment, PYTHONPATH included, passes on)."""
    return subprocess.run(
        [sys.executable, "-m", "vljepa.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_a_bad_config_value_is_one_error_line_with_exit_code_2(tmp_path):
    result = vljepa("train", "stages.0.steps=-5", f"out_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert result.stderr == "error: stages.0.steps: must be >= 1, got -5\n"
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_debug_shows_the_traceback(monkeypatch):
    result = vljepa("--debug", "train", "stages.0.steps=-5")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "ConfigError: stages.0.steps: must be >= 1, got -5" in result.stderr
    monkeypatch.setenv("VLJEPA_DEBUG", "1")
    result = runner.invoke(app, ["train", "stages.0.steps=-5"])
    assert result.exit_code == 1 and isinstance(result.exception, ConfigError) and result.stderr == ""


def test_classify_names_a_missing_video_before_loading_a_model(tmp_path):
    result = runner.invoke(
        app, ["classify", str(tmp_path / "nope.mp4"), "-m", str(tmp_path / "no-model"), "--labels", "a,b"]
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.mp4'}: no such file\n"


def test_classify_refuses_empty_labels(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    result = runner.invoke(app, ["classify", str(video), "-m", str(tmp_path / "no-model"), "--labels", " , "])
    assert result.exit_code == 2 and "no class names" in result.stderr and "--labels" in result.stderr


def test_a_missing_config_file_and_a_malformed_override_are_one_line(tmp_path):
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'nope.yaml'}: No such file or directory\n")
    result = runner.invoke(app, ["train", "stages.0.steps"])
    assert result.exit_code == 2
    assert result.stderr == "error: override 'stages.0.steps' is not of the form key=value (e.g. stages.0.steps=100)\n"


def test_a_folder_given_for_a_video_is_named(tmp_path):
    result = runner.invoke(app, ["caption", str(tmp_path), "-m", str(tmp_path)])
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path}: a folder, not a file\n")


def test_a_bug_keeps_its_exception(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("vljepa.data.world.generate_world", broken)
    result = runner.invoke(app, ["world", "--out", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_an_empty_server_token_is_refused_rather_than_serving_without_one(tmp_path):
    result = vljepa("serve", "-m", str(tmp_path), "--token", "")  # as from --token "$UNSET"
    assert result.returncode == 2
    assert result.stderr.startswith("error: token: empty (an unset variable?)")
