"""Decoding end to end: streaming windows, `train-decoder`, generation metrics, `caption`, `ask`, `stream`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_model_config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.data.video import iter_windows, read_clip, sliding_windows, video_duration
from vljepa.model import VLJepa
from vljepa.tasks.stream import segment_count, window_times

runner = CliRunner()


@pytest.mark.parametrize("length,stride", [(1.0, 0.5), (1.0, 0.3), (2.0, 0.75), (10.0, 1.0)])
def test_streamed_windows_equal_sliding_windows_read_one_by_one(stream_video, length, stride):
    streamed = list(iter_windows(stream_video, length, stride, num_frames=4))
    expected = sliding_windows(video_duration(stream_video), length, stride)
    assert np.allclose([bounds for bounds, _ in streamed], expected)
    assert len(streamed) == len(expected)
    for (start, end), frames in streamed:
        assert torch.equal(frames, read_clip(stream_video, 4, start, end))


def test_decoder_is_saved_with_the_model_and_inverts_its_text_encoder(model_with_decoder, clip_manifest, tmp_path):
    model, cache = model_with_decoder
    assert (model / "y_decoder" / "model.safetensors").is_file()
    log = json.loads((model / "y_decoder" / "train_log.json").read_text())["log"]
    assert [e["phase"] for e in log] == ["inversion"] * 600 + ["adaptation"] * 40
    result = runner.invoke(
        app,
        [
            "eval",
            "-m",
            str(model),
            "--manifest",
            str(clip_manifest),
            "--cache-dir",
            str(cache),
            "--out",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    generation = json.loads((tmp_path / "eval.json").read_text())[str(clip_manifest)]["generation"]
    assert generation["inversion"]["num"] == 16
    assert generation["inversion"]["exact_match"] >= 0.9, generation["inversion"]["examples"]
    assert generation["captioning"]["num_clips"] == 16 and generation["open_vqa"]["direction"]["num"] == 16


def test_caption_and_open_ask_print_what_the_api_decodes(model_with_decoder, clip_manifest):
    model, _ = model_with_decoder
    video = clip_manifest.parent / "clips" / "03.mp4"
    vljepa = VLJepa.from_pretrained(model)
    frames = read_clip(video, vljepa.config.x_encoder.num_frames).unsqueeze(0)
    question = "which way does the square move?"
    result = runner.invoke(app, ["caption", str(video), "-m", str(model)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == vljepa.decode(vljepa.encode_video(frames))[0]
    result = runner.invoke(app, ["ask", str(video), question, "-m", str(model)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == vljepa.decode(vljepa.encode_video(frames, question))[0]


def test_stream_command_decodes_once_per_segment(model_with_decoder, stream_video, tmp_path):
    model, _ = model_with_decoder
    args = ["stream", str(stream_video), "-m", str(model), "--window", "1", "--stride", "0.5"]
    result = runner.invoke(
        app, [*args, "--hz", "1", "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "s.json").read_text())
    captions = written["captions"]
    centres = window_times(sliding_windows(video_duration(stream_video), 1.0, 0.5))
    assert len(captions) == segment_count(centres, 1.0) == 4  # 1 Hz x 3.5 s between the first and last centres
    assert captions[0]["start"] == 0.0 and captions[-1]["end"] == pytest.approx(video_duration(stream_video))
    assert all(a["end"] == b["start"] for a, b in zip(captions, captions[1:]))
    assert all(c["start"] < c["time"] < c["end"] for c in captions)
    assert (tmp_path / "s.png").stat().st_size > 0
    online = runner.invoke(app, [*args, "--threshold", "0.0001"])
    assert online.exit_code == 0 and online.output.count("] ") >= 2, online.output
    assert runner.invoke(app, [*args, "--threshold", "0.1", "--hz", "1"]).exit_code != 0


def test_decoding_without_a_decoder_says_how_to_get_one(tmp_path, clip_manifest):
    VLJepa(tiny_model_config()).save_pretrained(tmp_path / "model")
    result = runner.invoke(
        app, ["caption", str(clip_manifest.parent / "clips" / "00.mp4"), "-m", str(tmp_path / "model")]
    )
    assert result.exit_code != 0 and "train-decoder" in result.output
