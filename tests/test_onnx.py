"""ONNX export and the onnxruntime model: the same answers as PyTorch, no torch import, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import XEncoderConfig
from vljepa.data.video import read_clip_array
from vljepa.deploy.preprocess import preprocess_frames
from vljepa.deploy.quantise import quantise_export
from vljepa.deploy.runtime import OnnxVLJepa
from vljepa.deploy.sidecar import SIDECAR_FILE, OnnxExportError
from vljepa.model import VLJepa
from vljepa.model.x_encoder import preprocess_clip

runner = CliRunner()
LABELS = ["moving left", "moving right", "standing still"]


@pytest.fixture(scope="module")
def exported(model_with_decoder, tmp_path_factory):
    """(PyTorch model folder with a Y-decoder, its fp32 ONNX export with LABELS embedded)."""
    model_dir, _ = model_with_decoder
    out = tmp_path_factory.mktemp("onnx") / "onnx"
    result = runner.invoke(
        app, ["export", "onnx", "-m", str(model_dir), "--out", str(out), "--labels", ",".join(LABELS)]
    )
    assert result.exit_code == 0, result.output
    return model_dir, out


def clips(manifest, count: int) -> np.ndarray:
    videos = sorted({json.loads(line)["video"] for line in manifest.read_text().splitlines()})[:count]
    return np.stack([read_clip_array(manifest.parent / video, 4) for video in videos])


@pytest.mark.parametrize("shape", [(64, 64, 32), (360, 640, 32), (31, 45, 32), (20, 30, 48), (100, 100, 100)])
def test_numpy_preprocessing_is_the_encoders(shape):
    height, width, size = shape
    frames = np.random.default_rng(0).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    config = XEncoderConfig(image_size=size)
    ours = preprocess_frames(frames, size, list(config.mean), list(config.std))
    reference = preprocess_clip(torch.from_numpy(frames), config).numpy()
    assert ours.shape == reference.shape == (2, 3, size, size)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_the_export_answers_as_pytorch(exported, clip_manifest):
    model_dir, onnx_dir = exported
    pytorch, onnx = VLJepa.from_pretrained(model_dir, bf16=False), OnnxVLJepa(onnx_dir)
    frames = clips(clip_manifest, 6)
    for query in (None, "which way does the square move?", "a question far longer than any the model saw " * 20):
        with pytorch.inference():
            expected = pytorch.encode_video(frames, query).numpy()
        cosine = (expected * onnx.encode_video(frames, query)).sum(-1)
        assert cosine.min() > 0.9999, (query, cosine)
    texts = ["left", "a blue square moves right", "a long caption " * 40]  # the last is cut at the text limit
    with pytorch.inference():
        expected = pytorch.encode_text(texts).numpy()
        labels = pytorch.encode_text(LABELS).numpy()
    assert (expected * onnx.encode_text(texts)).sum(-1).min() > 0.9999
    np.testing.assert_allclose(onnx.label_embeddings, labels, atol=1e-6)
    video = str(clip_manifest.parent / "clips/00.mp4")
    for command in (
        ["classify", video, "--labels", ",".join(LABELS), "--top", "3"],
        ["ask", video, "which way does the square move?", "-o", "left", "-o", "right"],
    ):
        answers = [runner.invoke(app, [*command, "-m", str(folder)]) for folder in (model_dir, onnx_dir)]
        assert all(a.exit_code == 0 for a in answers), [a.output for a in answers]
        assert answers[0].output.splitlines()[-3:] == answers[1].output.splitlines()[-3:]


def test_classifying_an_export_never_imports_torch(exported, clip_manifest):
    _, onnx_dir = exported
    script = (
        "import sys\nfrom vljepa.cli import app\n"
        f"app(['classify', {str(clip_manifest.parent / 'clips/01.mp4')!r}, '-m', {str(onnx_dir)!r}, "
        "'--labels', 'moving left,moving right'], standalone_mode=False)\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "moving" in result.stdout and "torch imported: False" in result.stdout


def test_an_export_captions_a_stream_as_pytorch_does_without_importing_torch(exported, stream_video, tmp_path):
    model_dir, onnx_dir = exported
    script = (
        "import sys\nfrom vljepa.cli import app\n"
        f"app(['stream', {str(stream_video)!r}, '-m', {str(onnx_dir)!r}, '--hz', '1', "
        f"'--json', {str(tmp_path / 'onnx.json')!r}], "
        "standalone_mode=False)\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout
    pytorch = runner.invoke(
        app, ["stream", str(stream_video), "-m", str(model_dir), "--hz", "1", "--json", str(tmp_path / "pt.json")]
    )
    assert pytorch.exit_code == 0, pytorch.output
    captions = [json.loads((tmp_path / name).read_text())["captions"] for name in ("onnx.json", "pt.json")]
    assert len(captions[0]) >= 2 and captions[0] == captions[1]  # the same segments, bounds and texts


def test_an_export_searches_the_index_its_model_built(exported, clip_manifest, tmp_path):
    model_dir, onnx_dir = exported
    clips = str(clip_manifest.parent / "clips")
    built = runner.invoke(
        app, ["index", "build", "-m", str(model_dir), "--videos", clips, "--out", str(tmp_path / "i")]
    )
    assert built.exit_code == 0, built.output
    query = ["search", str(tmp_path / "i"), "a red square moves right", "-k", "3", "-m"]
    pytorch, onnx = (runner.invoke(app, [*query, str(folder)]) for folder in (model_dir, onnx_dir))
    assert onnx.exit_code == 0, onnx.output
    ranked = [[line.split()[2:] for line in result.output.splitlines()] for result in (pytorch, onnx)]
    assert len(ranked[1]) == 3 and ranked[0] == ranked[1]  # the same clips in the same order (scores aside)


def test_the_server_runs_an_export_as_it_runs_the_model(exported, clip_manifest, tmp_path):
    from fastapi.testclient import TestClient

    from vljepa.serve.app import create_app
    from vljepa.serve.server import Server
    from vljepa.serve.settings import ServeSettings
    from vljepa.tasks.index import VideoIndex

    model_dir, onnx_dir = exported
    clips = clip_manifest.parent / "clips"
    indexed = [str(clips / f"{n:02d}.mp4") for n in range(8)]
    index = VideoIndex.build(VLJepa.from_pretrained(model_dir), indexed, tmp_path / "i", progress=False)
    answers = {}
    for name, model in (("pytorch", VLJepa.from_pretrained(model_dir)), ("onnx", OnnxVLJepa(onnx_dir))):
        server = Server(model, ServeSettings(roots=(clip_manifest.parent,)), VideoIndex.open(tmp_path / "i"))
        with TestClient(create_app(server)) as client:
            labels = client.post("/classify", data={"path": "clips/01.mp4", "labels": ",".join(LABELS)}).json()
            caption = client.post("/caption", data={"path": "clips/01.mp4"}).json()
            search = client.get("/search", params={"q": "a red square moves right", "k": "3"}).json()
            answers[name] = (
                [label["text"] for label in labels["labels"]],
                caption,
                [h["path"] for h in search["results"]],
            )
            if name == "onnx":
                refused = client.post("/caption", data={"path": "clips/01.mp4", "beam": "2"})
                assert refused.status_code == 422 and "decodes greedily" in refused.json()["error"]
                info = client.get("/info").json()
                assert "onnxruntime, fp32" in info["precision"] and info["parts"]["x_encoder"]["bytes"] > 0
    assert len(answers["onnx"][2]) == 3 and set(answers["onnx"][2]) <= {clip.path for clip in index.clips}
    assert answers["onnx"] == answers["pytorch"]  # the same labels in order, caption, and clips in order


def test_int8_weights_stay_close_to_fp32(exported, clip_manifest, tmp_path):
    """`export onnx --int8` is the fp32 export quantised in place, as here on a copy of the shared export."""
    _, onnx_dir = exported
    shutil.copytree(onnx_dir, tmp_path / "int8")
    quantise_export(tmp_path / "int8")
    int8 = OnnxVLJepa(tmp_path / "int8")
    assert int8.sidecar.weights == "int8"
    assert {g.file for g in int8.sidecar.graphs.values()} == {
        "x_encoder.int8.onnx",
        "predictor.int8.onnx",
        "y_encoder.onnx",
        "y_decoder.onnx",
    }
    frames = clips(clip_manifest, 6)
    query = "which way does the square move?"
    # a tiny model with an untrained predictor quantises worst; the demo model's figures are in BENCHMARKS.md
    assert (OnnxVLJepa(onnx_dir).encode_video(frames, query) * int8.encode_video(frames, query)).sum(-1).min() > 0.9
    with pytest.raises(OnnxExportError, match="already int8"):
        quantise_export(tmp_path / "int8")


def test_a_missing_or_mismatched_sidecar_is_named(exported, tmp_path):
    _, onnx_dir = exported
    broken = tmp_path / "broken"
    shutil.copytree(onnx_dir, broken)
    sidecar = json.loads((broken / SIDECAR_FILE).read_text())
    with open(broken / "predictor.onnx", "ab") as graph:  # a graph from another export
        graph.write(b"\0")
    with pytest.raises(OnnxExportError, match="predictor.onnx: .* bytes, .* records"):
        OnnxVLJepa(broken)
    (broken / SIDECAR_FILE).write_text(json.dumps({**sidecar, "format": 2}))
    with pytest.raises(OnnxExportError, match="format: this vljepa reads ONNX exports of format 1, not 2"):
        OnnxVLJepa(broken)
    (broken / SIDECAR_FILE).write_text(json.dumps({**sidecar, "colour": "red"}))
    with pytest.raises(OnnxExportError, match="colour: unknown config key"):
        OnnxVLJepa(broken)
    (broken / SIDECAR_FILE).unlink()
    result = runner.invoke(app, ["classify", str(onnx_dir / "labels.npy"), "-m", str(broken), "--labels", "a,b"])
    assert result.exit_code == 2
    assert "no config.json; not a vljepa checkpoint directory" in result.output  # neither model nor export


def test_commands_that_need_pytorch_say_so_and_an_export_does_not_overwrite_other_files(
    exported, clip_manifest, tmp_path
):
    model_dir, onnx_dir = exported
    video = str(clip_manifest.parent / "clips/00.mp4")
    clips = str(clip_manifest.parent / "clips")
    result = runner.invoke(app, ["retrieve", "-m", str(onnx_dir), "--query", "a square", "--videos", clips])
    assert result.exit_code == 2
    assert "an ONNX export; this command needs the PyTorch model folder" in result.output
    without = tmp_path / "without-decoder"
    shutil.copytree(onnx_dir, without)
    sidecar = json.loads((without / SIDECAR_FILE).read_text())
    del sidecar["graphs"]["y_decoder"]
    (without / SIDECAR_FILE).write_text(json.dumps({**sidecar, "decoding": None}))
    result = runner.invoke(app, ["caption", video, "-m", str(without)])
    assert result.exit_code == 2 and "this ONNX export has no Y-decoder" in " ".join(result.output.split())
    result = runner.invoke(app, ["stream", video, "-m", str(without)])
    assert result.exit_code == 2 and "this model has no Y-decoder" in " ".join(result.output.split())
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["export", "onnx", "-m", str(model_dir), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "exists and is not an ONNX export" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_y_decoder_graph_writes_what_pytorch_writes(exported, clip_manifest):
    model_dir, onnx_dir = exported
    pytorch, onnx = VLJepa.from_pretrained(model_dir, bf16=False), OnnxVLJepa(onnx_dir)
    frames = clips(clip_manifest, 16)
    with pytorch.inference():
        expected = pytorch.decode(pytorch.encode_video(frames))
    assert onnx.decode(onnx.encode_video(frames)) == expected
    video = str(clip_manifest.parent / "clips/03.mp4")
    answers = [runner.invoke(app, ["caption", video, "-m", str(folder)]).output for folder in (model_dir, onnx_dir)]
    assert answers[0].splitlines()[-1] == answers[1].splitlines()[-1]
    result = runner.invoke(app, ["caption", video, "-m", str(onnx_dir), "--beam", "3"])
    assert result.exit_code == 2 and "decodes greedily (beam 1)" in " ".join(result.output.split())
