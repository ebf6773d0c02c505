"""The X-encoder's preprocessing in numpy, for the ONNX runtime: uint8 frames (T, H, W, 3) -> (T, 3, S, S).

The same steps as `model/x_encoder.preprocess_clip` (resize the shorter side to S with antialiased bilinear
interpolation, centre crop, scale to [0, 1], normalise), so that a clip gives the same input to both runtimes.
PyTorch's antialiased bilinear resize follows Pillow's: each output pixel is a normalised triangle-filter
average of the input pixels within one output pixel's footprint (one input pixel when enlarging). Resizing
is separable, so it is two small matrix products per frame: `resize_matrix(n, m) @ image @ resize_matrix(...)`.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=16)
def resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 weights of antialiased bilinear resizing along one axis."""
    scale = in_size / out_size
    support = max(scale, 1.0)  # the triangle's half-width, in input pixels
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for row in range(out_size):
        centre = scale * (row + 0.5)
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        taps = np.arange(first, last)
        triangle = np.clip(1.0 - np.abs((taps - centre + 0.5) / support), 0.0, None)
        weights[row, first:last] = triangle / triangle.sum()
    return weights.astype(np.float32)


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The shape with its shorter side at `size` (rounded as `preprocess_clip` rounds)."""
    scale = size / min(height, width)
    return max(size, round(height * scale)), max(size, round(width * scale))


def preprocess_frames(frames: np.ndarray, image_size: int, mean: list[float], std: list[float]) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> normalised float32 (T, 3, image_size, image_size)."""
    video = frames.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # (T, 3, H, W)
    height, width = video.shape[-2:]
    new_h, new_w = resized_shape(height, width, image_size)
    if (new_h, new_w) != (height, width):
        video = resize_matrix(height, new_h) @ video @ resize_matrix(width, new_w).T
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    video = video[:, :, top : top + image_size, left : left + image_size]
    mean_, std_ = (np.asarray(v, dtype=np.float32).reshape(1, 3, 1, 1) for v in (mean, std))
    return np.ascontiguousarray((video - mean_) / std_, dtype=np.float32)
