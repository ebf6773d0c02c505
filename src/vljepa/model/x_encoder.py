"""X-encoder: the frozen video encoder, (B, T, C, H, W) -> visual tokens (B, N, D).

Paper: V-JEPA 2 ViT-L/16 at 256 px, frozen; tubelets 2x16x16 give (T/2)*256 tokens of width 1024,
all passed on (no pooling); an image is repeated to fill the tubelet.
Ours: the same transformers `VJEPA2Model` class, through `get_vision_features`. The CPU default is a
tiny VJEPA2 (32 px, patch 8, 4 layers, width 192: 16 tokens per 2 frames) with seeded random weights;
`path=` loads any VJEPA2 checkpoint in transformers format with the same code.
Why frozen "for real": the module is kept in eval mode through `model.train()`, runs under
`torch.no_grad()`, has `requires_grad=False` everywhere and is never handed to the optimizer, so its
tokens can be cached once per clip (see `data/feature_cache.py`).
Preprocessing belongs to the encoder (its image size, mean and std): uint8 frames (T, H, W, 3) ->
float (T, 3, S, S) by resizing the shorter side to S (antialiased bilinear, plain torch: torchvision is
not usable next to the CPU torch here), centre cropping, scaling to [0, 1] and normalising (ImageNet
statistics for V-JEPA 2). `preprocess_clip` is the function of a config (encoder pretraining has no
`XEncoder`); `XEncoder.preprocess` applies it with the encoder's own config.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn
from transformers import VJEPA2Config, VJEPA2Model

from ..config import XEncoderConfig
from ..data.video import DECODE_MAX_SHORT_SIDE


def tiny_vjepa2_config(config: XEncoderConfig) -> VJEPA2Config:
    """A small VJEPA2 whose (unused here) masked predictor is kept minimal."""
    return VJEPA2Config(
        patch_size=config.patch_size,
        crop_size=config.image_size,
        frames_per_clip=config.num_frames,
        tubelet_size=config.tubelet_size,
        hidden_size=config.hidden_size,
        num_attention_heads=config.num_heads,
        num_hidden_layers=config.num_layers,
        pred_hidden_size=32,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
    )


def preprocess_clip(frames: torch.Tensor, config: XEncoderConfig) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> normalised float (T, 3, S, S), S = `config.image_size`."""
    size = config.image_size
    video = frames.permute(0, 3, 1, 2).float() / 255.0
    height, width = video.shape[-2:]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        video = F.interpolate(video, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    video = video[:, :, top : top + size, left : left + size]
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (video - mean) / std


class XEncoder(nn.Module):
    def __init__(self, config: XEncoderConfig):
        super().__init__()
        self.config = config
        if config.path is not None:
            self.vjepa2 = VJEPA2Model.from_pretrained(config.path)
        else:
            with torch.random.fork_rng():
                torch.manual_seed(config.seed)
                self.vjepa2 = VJEPA2Model(tiny_vjepa2_config(config))
        self.vjepa2.requires_grad_(False)
        self.vjepa2.eval()
        self.embed_dim: int = self.vjepa2.config.hidden_size
        self.tubelet_size: int = self.vjepa2.config.tubelet_size

    @property
    def device(self) -> torch.device:
        return next(self.vjepa2.parameters()).device

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (T, H, W, 3) -> this encoder's normalised input (T, 3, S, S)."""
        return preprocess_clip(frames, self.config)

    def preprocessing_signature(self) -> dict:
        """Everything that changes the preprocessed input: part of the feature-cache key."""
        config = self.config
        return {
            "image_size": config.image_size,
            "num_frames": config.num_frames,
            "mean": list(config.mean),
            "std": list(config.std),
            "resize": "shorter-side bilinear antialias, centre crop",
            "decoded_short_side_at_most": DECODE_MAX_SHORT_SIDE,
        }

    def train(self, mode: bool = True) -> XEncoder:
        """Frozen: ignore `mode` and stay in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, C, H, W), normalised -> tokens (B, N, D). T is padded to the tubelet depth."""
        if video.shape[1] % self.tubelet_size:
            repeat = self.tubelet_size - video.shape[1] % self.tubelet_size
            video = torch.cat([video, video[:, -1:].expand(-1, repeat, -1, -1, -1)], dim=1)
        return self.vjepa2.get_vision_features(video)

    def fingerprint(self) -> str:
        """Hash of the encoder's weights: changes whenever the features would."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.vjepa2.encoder.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]
