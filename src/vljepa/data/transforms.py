"""Video preprocessing in plain torch (torchvision is not usable next to the CPU torch here).

uint8 frames (T, H, W, 3) -> float (T, 3, S, S): resize the shorter side to S (antialiased
bilinear), centre crop, scale to [0, 1], normalise with the encoder's mean/std (ImageNet for V-JEPA 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import XEncoderConfig


def preprocess_clip(frames: torch.Tensor, config: XEncoderConfig) -> torch.Tensor:
    size = config.image_size
    video = frames.permute(0, 3, 1, 2).float() / 255.0
    height, width = video.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        video = F.interpolate(video, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    video = video[:, :, top:top + size, left:left + size]
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (video - mean) / std


def preprocessing_signature(config: XEncoderConfig) -> dict:
    """Everything that changes the preprocessed input: part of the feature-cache key."""
    return {"image_size": config.image_size, "num_frames": config.num_frames, "mean": list(config.mean),
            "std": list(config.std), "resize": "shorter-side bilinear antialias, centre crop"}
