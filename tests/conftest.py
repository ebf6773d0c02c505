"""Shared fixtures: a tiny model config (fast on CPU) and a small manifest of generated mp4 clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers.utils import logging as hf_logging

from vljepa.config import ModelConfig, PredictorConfig, XEncoderConfig, YEncoderConfig
from vljepa.data.video import write_video

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


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
