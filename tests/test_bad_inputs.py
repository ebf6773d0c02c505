"""Faulty data is refused at once with an error that names the file (and line, field): manifests,
videos, images, paths and time windows."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import tiny_model_config
from PIL import Image
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.data.manifest import ManifestError, load_manifest
from vljepa.data.video import TruncatedVideoWarning, VideoError, read_clip, video_duration
from vljepa.errors import VljepaError
from vljepa.model import VLJepa
from vljepa.model.x_encoder import preprocess_clip

GOOD = {"video": "a.mp4", "caption": "a red square moves right"}


def write_manifest(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def first_clip(clip_manifest: Path) -> Path:
    return Path(load_manifest(clip_manifest)[0].clip.path)


# --- manifests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["caption", "question", "answer", "label"])
@pytest.mark.parametrize("value, shown", [("NaN", "float nan"), ("3", "int 3"), ('["a", "b"]', "list ['a', 'b']")])
def test_a_text_that_is_not_a_string_is_refused_on_reading(tmp_path, field, value, shown):
    fields = {"question": '"why?"', "answer": '"because"'} if field in ("question", "answer") else {}
    fields[field] = value
    record = '{"video": "a.mp4", ' + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    path = write_manifest(tmp_path / "bad.jsonl", json.dumps(GOOD), record)
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert str(raised.value) == f'{path}:2: "{field}" must be a non-empty string, got {shown}'
    assert isinstance(raised.value, VljepaError)


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_text_is_refused(tmp_path, text):
    path = write_manifest(tmp_path / "empty.jsonl", json.dumps({"video": "a.mp4", "label": text}))
    with pytest.raises(ManifestError, match=rf'^{path}:1: "label" must be a non-empty string, got an empty string$'):
        load_manifest(path)


def test_a_very_long_text_is_accepted_and_truncated_by_the_tokenizers(tmp_path):
    long = "red " * 25_000  # 100k characters
    path = write_manifest(
        tmp_path / "long.jsonl", json.dumps({"video": "a.mp4", "caption": long, "question": long, "answer": "yes"})
    )
    record = load_manifest(path)[0]
    assert record.caption == long and len(record.caption) == 100_000
    model = VLJepa(tiny_model_config())
    shorter = "red " * 1000  # also past both tokenizers' limits
    ids, mask = model.predictor.tokenize([long, shorter])
    assert ids.shape[1] == model.config.predictor.max_query_tokens and bool(mask.all())
    with model.inference():
        texts = model.encode_text([long, shorter])
        tokens = torch.randn(1, 8, model.x_encoder.embed_dim).expand(2, -1, -1)
        predicted = model.predict(tokens, [long, shorter])
    assert torch.allclose(texts[0], texts[1], atol=1e-6) and torch.allclose(predicted[0], predicted[1], atol=1e-6)


def test_an_answer_outside_its_options_is_refused(tmp_path):
    record = {"video": "a.mp4", "question": "which way?", "answer": "up", "options": ["left", "right"]}
    path = write_manifest(tmp_path / "vqa.jsonl", json.dumps(GOOD), json.dumps(record))
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert str(raised.value) == f"{path}:2: \"answer\" 'up' is not among the options ['left', 'right']"


@pytest.mark.parametrize(
    "options, message",
    [
        ('"left"', "\"options\" must be a non-empty list of strings, got 'left'"),
        ("[]", '"options" must be a non-empty list of strings, got []'),
        ('["left", 2]', '"options[1]" must be a non-empty string, got int 2'),
    ],
)
def test_options_must_be_a_list_of_strings(tmp_path, options, message):
    path = write_manifest(
        tmp_path / "vqa.jsonl", f'{{"video": "a.mp4", "question": "q?", "answer": "left", "options": {options}}}'
    )
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert str(raised.value) == f"{path}:1: {message}"


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_manifest(tmp_path / "broken.jsonl", json.dumps(GOOD), "", '{"video": "a.mp4", "caption": ')
    with pytest.raises(ManifestError, match=rf"^{path}:3: invalid JSON \("):
        load_manifest(path)


def test_a_manifest_that_is_not_utf8_names_the_path(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps(GOOD).encode() + b"\n" + '{"video": "a.mp4", "caption": "café"}'.encode("latin-1") + b"\n"
    )
    with pytest.raises(ManifestError, match=rf"^{path}:2: not UTF-8 text \(byte 34: invalid continuation byte\)$"):
        load_manifest(path)


@pytest.mark.parametrize(
    "window, message",
    [
        ('"start": 2, "end": 1', '"start" (2.0) must come before "end" (1.0)'),
        ('"start": 1, "end": 1', '"start" (1.0) must come before "end" (1.0)'),
        ('"start": -1', '"start" must be a number of seconds >= 0, got -1'),
        ('"end": "soon"', "\"end\" must be a number of seconds >= 0, got 'soon'"),
        ('"start": true', '"start" must be a number of seconds >= 0, got True'),
    ],
)
def test_a_bad_time_window_is_refused_on_reading(tmp_path, window, message):
    path = write_manifest(tmp_path / "times.jsonl", '{"video": "a.mp4", "caption": "x", ' + window + "}")
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert str(raised.value) == f"{path}:1: {message}"


def test_a_bad_segment_names_its_index(tmp_path):
    record = {
        "video": "s.mp4",
        "segments": [{"start": 0, "end": 1, "caption": "ok"}, {"start": 1, "end": 2, "caption": 7}],
    }
    path = write_manifest(tmp_path / "streams.jsonl", json.dumps(record))
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert str(raised.value) == f'{path}:1: segments[1]: "caption" must be a non-empty string, got int 7'


# --- paths ------------------------------------------------------------------------------------------


def test_paths_may_leave_the_manifest_folder_or_be_absolute(tmp_path, clip_manifest):
    """Allowed on purpose (see the manifest module): `../` and absolute paths resolve to the file."""
    source = first_clip(clip_manifest)
    shutil.copy(source, tmp_path / "outside.mp4")
    (tmp_path / "manifests").mkdir()
    path = write_manifest(
        tmp_path / "manifests" / "m.jsonl",
        json.dumps({"video": "../outside.mp4", "caption": "up one folder"}),
        json.dumps({"video": str(source), "caption": "absolute"}),
    )
    records = load_manifest(path)
    assert [r.clip.path for r in records] == [str((tmp_path / "outside.mp4").resolve()), str(source)]
    assert torch.equal(read_clip(records[0].clip.path, 4), read_clip(records[1].clip.path, 4))


def test_paths_with_unicode_and_spaces_work(tmp_path, clip_manifest):
    folder = tmp_path / "vidéos à voir"
    folder.mkdir()
    shutil.copy(first_clip(clip_manifest), folder / "clip 1 ✓.mp4")
    path = write_manifest(
        folder / "manifest ü.jsonl", json.dumps({"video": "clip 1 ✓.mp4", "caption": "ça bouge"}, ensure_ascii=False)
    )
    record = load_manifest(path)[0]
    assert record.clip.path == str(folder / "clip 1 ✓.mp4") and record.caption == "ça bouge"
    assert read_clip(record.clip.path, 4).shape == (4, 64, 64, 3)


# --- videos -----------------------------------------------------------------------------------------


def encode_mp4(path: Path, frames: int, faststart: bool) -> Path:
    """An H.264 mp4 of random frames; `faststart` puts the header (moov) before the frame data."""
    pixels = np.random.default_rng(0).integers(0, 255, (frames, 64, 64, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for frame in pixels:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def unreadable_video(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("these are notes, not a video\n" * 20)
    elif kind == "headerless":  # cut before its header, which this muxer writes at the end
        cut(encode_mp4(path, 40, faststart=False), 0.6)
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "file not found"),
        ("empty", "empty file"),
        ("text", "cannot decode"),
        ("headerless", "cannot decode"),
    ],
)
def test_an_unreadable_video_names_its_path(tmp_path, kind, message):
    path = unreadable_video(tmp_path, kind)
    with pytest.raises(VideoError) as raised:
        read_clip(path, 4)
    assert str(raised.value).startswith(f"{path}: {message}")


def test_a_truncated_video_uses_its_surviving_frames_with_a_warning_naming_it(tmp_path):
    path = cut(encode_mp4(tmp_path / "cut short.mp4", 40, faststart=True), 0.6)
    with pytest.warns(TruncatedVideoWarning) as caught:
        frames = read_clip(path, 4)
    assert frames.shape == (4, 64, 64, 3)
    assert str(caught[0].message).startswith(f"{path}: decoded ") and "of the 40 frames its header declares" in str(
        caught[0].message
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_clip(encode_mp4(tmp_path / "whole.mp4", 40, faststart=True), 4)  # an intact file: no warning


@pytest.mark.parametrize(
    "mode, pixel, rgb",
    [("L", 128, (128, 128, 128)), ("RGBA", (10, 200, 30, 0), (10, 200, 30)), ("RGB", (250, 5, 5), (250, 5, 5))],
)
@pytest.mark.parametrize("size", [(1, 1), (30, 20)])
def test_images_in_grayscale_rgba_and_one_pixel(tmp_path, mode, pixel, rgb, size):
    path = tmp_path / f"image {mode}.png"
    Image.new(mode, size, pixel).save(path)
    frames = read_clip(path, 4)
    assert frames.shape == (4, size[1], size[0], 3) and frames.dtype == torch.uint8
    assert frames[0, 0, 0].tolist() == list(rgb)
    config = tiny_model_config().x_encoder
    assert preprocess_clip(frames, config).shape == (4, 3, config.image_size, config.image_size)


@pytest.mark.parametrize(
    "start, end, message",
    [
        (2.0, 1.0, "start 2.0 s is not before end 1.0 s"),
        (0.5, 0.5, "start 0.5 s is not before end 0.5 s"),
        (-1.0, None, "start -1.0 s is negative"),
        (100.0, 200.0, "start 100.0 s is beyond the video's duration 1.000 s"),
        (1.0, None, "start 1.0 s is beyond the video's duration 1.000 s"),
    ],
)
def test_a_time_window_outside_the_video_is_refused(clip_manifest, start, end, message):
    path = first_clip(clip_manifest)
    assert video_duration(path) == 1.0
    with pytest.raises(VideoError) as raised:
        read_clip(path, 4, start, end)
    assert str(raised.value) == f"{path}: {message}"


@pytest.mark.parametrize("command", [["caption"], ["classify", "--labels", "a,b"]])
def test_caption_and_classify_refuse_a_window_beyond_the_video(tmp_path, clip_manifest, command):
    model = tmp_path / "model"
    VLJepa(tiny_model_config()).save_pretrained(model)
    video = first_clip(clip_manifest)
    window = ["--start", "100", "--end", "200"]
    result = CliRunner().invoke(app, [command[0], str(video), "-m", str(model), *command[1:], *window])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: {video}: start 100.0 s is beyond the video's duration 1.000 s\n"


def test_a_truncated_weight_file_is_one_error_line_naming_it(tmp_path, clip_manifest):
    model = tmp_path / "model"
    VLJepa(tiny_model_config()).save_pretrained(model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = CliRunner().invoke(app, ["classify", str(first_clip(clip_manifest)), "-m", str(model), "--labels", "a,b"])
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        result.stderr.startswith(f"error: {weights}: not a readable safetensors file (")
        and "truncated" in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["classify", "--labels", "a,b"], ["ask", "which way?"], ["caption"]])
def test_a_file_that_is_not_a_video_is_reported_before_the_model_loads(tmp_path, command):
    model = tmp_path / "model"
    VLJepa(tiny_model_config()).save_pretrained(model)
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    name, *options = command
    result = CliRunner().invoke(app, [name, str(fake), *options, "-m", str(model)])
    assert result.exit_code == 2 and result.stdout == ""
    # one line and nothing else: the model (which announces its precision when it loads) was never loaded
    assert result.stderr.startswith(f"error: {fake}: ") and result.stderr.count("\n") == 1
