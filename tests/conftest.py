"""Shared fixtures: a tiny model config (fast on CPU), a small manifest of generated mp4 clips, a short stream,
and a tiny model with a trained Y-decoder."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers.utils import logging as hf_logging
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import ModelConfig, PredictorConfig, XEncoderConfig, YEncoderConfig
from vljepa.data.video import write_video
from vljepa.model import VLJepa

# glibc gives the heap's free top back to the kernel as it frees and faults it in again at the next
# allocation; the suite's many short runs of small models spend a good part of their time in those page
# faults (one training test on this machine: 27-29 s without, 15-24 s with the pad set from its start). Keep
# 1 GiB of free heap: here, and in every process the tests start (a reservation, not resident memory).
TOP_PAD = 1 << 30
os.environ["MALLOC_TOP_PAD_"] = str(TOP_PAD)
try:
    ctypes.CDLL("libc.so.6").mallopt(-2, TOP_PAD)  # -2: M_TOP_PAD
except (OSError, AttributeError):  # not glibc: nothing to tune
    pass
# The tests write checkpoints of the tiny model (about 270 MB with AdamW's moments) and fsync them, as runs do;
# on a disk that writing and syncing cost a test as much time as its training (one resume test on this machine:
# 22-24 s against 15-17 s). So pytest's temporary folders go to RAM when the machine has a RAM file system with
# room for them; pytest still removes them after a run that passed (tmp_path_retention_policy).
RAM_TEMP_ROOT, RAM_TEMP_MIN_FREE = Path("/dev/shm"), 8 << 30
if "PYTEST_DEBUG_TEMPROOT" not in os.environ and RAM_TEMP_ROOT.is_dir() and os.access(RAM_TEMP_ROOT, os.W_OK):
    if shutil.disk_usage(RAM_TEMP_ROOT).free >= RAM_TEMP_MIN_FREE:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(RAM_TEMP_ROOT)
if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker, and per process it starts: they share the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


# Under pytest-xdist each worker takes whole files (`--dist loadfile`, for the module fixtures), in collection
# order: a long file collected last would run alone on one core at the end. These, the longest on 2 cores, go first.
LONGEST_FILES = [
    "test_train.py",
    "test_plan.py",
    "test_onnx.py",
    "test_resume_kill.py",
    "test_seeking_reads.py",
    "test_run_contract.py",
    "test_compilation.py",
    "test_demo.py",
    "test_live.py",
    "test_trackers.py",
    "test_cli_errors.py",
    "test_fsdp.py",
]


def pytest_collection_modifyitems(items) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """The two modules hold the same parameter and buffer names, each bit-exactly equal."""
    first, second = a.state_dict(), b.state_dict()
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def tiny_model_config(**predictor_overrides) -> ModelConfig:
    return ModelConfig(
        shared_dim=32,
        x_encoder=XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, image_size=32, num_frames=4),
        predictor=PredictorConfig(
            hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, **predictor_overrides
        ),
        y_encoder=YEncoderConfig(lr_multiplier=0.05),
    )


@pytest.fixture
def model_config() -> ModelConfig:
    return tiny_model_config()


def moving_square(direction: int, colour: int, start: int) -> np.ndarray:
    """8 frames of a 10-px square moving right (+1) or left (-1) by 3 px a frame on a 64-px canvas."""
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    for t in range(8):
        x = start + direction * 3 * t
        frames[t, 27:37, x : x + 10, colour] = 255
    return frames


@pytest.fixture(scope="session")
def clip_manifest(tmp_path_factory):
    """16 clips of squares moving left/right in 3 colours, with captions, labels and questions."""
    root = tmp_path_factory.mktemp("clips")
    colours = ["red", "green", "blue"]
    records = []
    for i in range(16):
        direction, colour = (1 if i % 2 == 0 else -1), i % 3
        start = 8 + (i * 5) % 12 if direction > 0 else 46 - (i * 5) % 12
        write_video(root / f"clips/{i:02d}.mp4", moving_square(direction, colour, start), fps=8)
        word = "right" if direction > 0 else "left"
        video = f"clips/{i:02d}.mp4"
        records += [
            {"video": video, "caption": f"clip {i}: a {colours[colour]} square moves {word}"},
            {"video": video, "label": f"moving {word}"},
            {
                "video": video,
                "question": "which way does the square move?",
                "answer": word,
                "options": ["left", "right"],
                "type": "direction",
            },
        ]
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="session")
def stream_video(tmp_path_factory):
    """4.5 s at 8 fps: a square moving right, then left, then right, then a still frame run."""
    frames = [
        moving_square(1, 0, 8),
        moving_square(-1, 1, 46),
        moving_square(1, 2, 8),
        np.repeat(moving_square(1, 0, 30)[:1], 12, axis=0),
    ]
    path = tmp_path_factory.mktemp("stream") / "stream.mp4"
    write_video(path, np.concatenate(frames), fps=8)
    return path


# 600 inversion steps: with 300, one seed in five on the fp32 path stalled before telling the numbered captions apart
TINY_DECODER = [
    "inversion_steps=600",
    "adaptation_steps=40",
    "batch_size=32",
    "lr=0.01",
    "warmup_steps=10",
    "decoder.noise_std=0.02",
    "decoder.hidden_size=32",
    "decoder.num_layers=1",
    "decoder.num_heads=2",
    "decoder.intermediate_size=64",
    "decoder.prefix_tokens=2",
]


@pytest.fixture(scope="session")
def model_with_decoder(tmp_path_factory, clip_manifest):
    """(model directory, feature cache): a tiny random model whose Y-decoder `train-decoder` trained on the clips."""
    root = tmp_path_factory.mktemp("decoder")
    torch.manual_seed(0)
    VLJepa(tiny_model_config()).save_pretrained(root / "model")
    result = CliRunner().invoke(
        app,
        [
            "train-decoder",
            "-m",
            str(root / "model"),
            "--manifest",
            str(clip_manifest),
            f"cache_dir={root / 'cache'}",
            *TINY_DECODER,
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "model", root / "cache"
