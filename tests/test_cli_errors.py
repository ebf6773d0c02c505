"""Expected errors reach the user as one `error:` line with exit code 2; `--debug` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
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


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["classify", "{video}", "--labels", "a,b", "--top", "0"],
            "top: Input should be greater than or equal to 1, got 0",
        ),
        (
            ["classify", "{video}", "--labels", "a,b", "--top", "-3"],
            "top: Input should be greater than or equal to 1, got -3",
        ),
        (["classify", "{video}", "--labels", " , "], "labels: no class names"),
        (["ask", "{video}", ""], "question: must not be empty, got ''"),
        (["ask", "{video}", "which way?", "--beam", "0"], "beam: Input should be greater than or equal to 1, got 0"),
        (["caption", "{video}", "--beam", "-5"], "beam: Input should be greater than or equal to 1, got -5"),
        (["caption", "{video}", "--start", "2", "--end", "1"], "end: must be after start (2 s), got 1 s"),
        (["retrieve", "--query", "", "--videos", "{folder}"], "text: must not be empty, got ''"),
        (["search", "{folder}", " "], "text: must not be empty, got ' '"),
        (["stream", "{video}", "--hz", "0"], "hz: Input should be greater than 0, got 0.0"),
    ],
)
def test_task_limits_are_the_servers_and_are_checked_before_the_model_loads(tmp_path, arguments, message):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # never read: the request is refused first
    arguments = [a.format(video=video, folder=tmp_path) for a in arguments]
    result = CliRunner().invoke(app, [*arguments, "-m", str(tmp_path / "no-model")])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {message}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "model.predictor.num_heads=3"], "model.predictor.num_heads: 3 heads do not divide hidden_size 128"),
        (["train", "model.x_encoder.num_heads=5"], "model.x_encoder.num_heads: 5 heads do not divide hidden_size 192"),
        (["train", "device=gpu"], "device: expected auto, cpu, cuda, cuda:N, xpu or mps, got 'gpu'"),
        (
            ["train", "model.predictor.attention=foo"],
            "model.predictor.attention: must be one of sdpa, eager; got 'foo'",
        ),
        (["serve", "-m", ".", "--port", "99999"], "Invalid value for '--port'"),
        (["eval", "-m", ".", "--manifest", "x.jsonl", "--view", "bogus"], "'bogus': choose from clip, single_frame"),
    ],
)
def test_bad_values_are_one_line_before_any_work(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output


def test_an_unwritable_eval_output_is_refused_before_the_work(model_with_decoder, clip_manifest, tmp_path):
    model, cache = model_with_decoder
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "eval.json"
    result = runner.invoke(
        app, ["eval", "-m", str(model), "--manifest", str(clip_manifest), "--cache-dir", str(cache), "--out", str(out)]
    )
    assert result.exit_code == 2 and "a-file: cannot write here" in result.output
    assert "classification" not in result.output  # refused before evaluating
