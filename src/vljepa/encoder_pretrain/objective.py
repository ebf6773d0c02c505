"""The V-JEPA objective on the transformers `VJEPA2Model`: context encoder, EMA target, masked predictor.

V-JEPA: the context encoder sees only the context tokens (the masked ones are dropped, not
replaced); the predictor takes the context features plus a learnable mask token at each target
position and predicts the target encoder's features there; the target encoder, an exponential
moving average of the context encoder, sees the whole clip and its output is layer-normed; the loss
is the L1 distance on the target tokens, averaged over the mask generators.
Ours: the same, with transformers' own modules: `VJEPA2Model.encoder` is the context encoder (run
layer by layer on the kept tokens, with their grid positions for RoPE, since `VJEPA2Model.forward`
always encodes every token and would let the context see the target), `VJEPA2Model.predictor` is
called as transformers calls it (full-length features + `context_mask`/`target_mask` index lists;
the context features are scattered back to their positions and the predictor gathers them), and a
deep copy of the encoder is the target. Differences: the predictor always uses mask token 1
(transformers does not expose the index; V-JEPA uses one per generator); the student starts from the
seeded random encoder `XEncoder` builds (or from `x_encoder.path`), so "before pretraining" is
exactly the encoder the rest of the package uses; the predictor starts fresh.
Ours, optional (`content_weighting`, 0 = V-JEPA's plain mean): each target token's L1 is weighted by
the pixel spread of its tubelet, so that on video whose background is flat (the built-in world: one
small moving shape on a uniform field) the loss is not dominated by tokens that carry no form. The
weights come from pixels alone (no labels) and are normalised to mean 1 over the batch's tokens; on
textured video they tend to uniform.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import VJEPA2Config, VJEPA2Model
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder, apply_masks

from ..model.x_encoder import XEncoder, tiny_vjepa2_config
from .config import EncoderPretrainConfig
from .health import feature_spread
from .masking import Masks


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # mean over the mask generators
    mask_losses: list[float]  # one per generator
    mask_tokens: list[tuple[int, int]]  # (context, target) tokens per clip, one pair per generator
    target_std: float  # spread of the target features across the batch (see `feature_spread`)


def pretrain_vjepa2_config(config: EncoderPretrainConfig) -> VJEPA2Config:
    """The encoder of `config.x_encoder` (its checkpoint's, if it has a path) with the configured predictor."""
    x_config = config.x_encoder
    base = VJEPA2Config.from_pretrained(x_config.path) if x_config.path else tiny_vjepa2_config(x_config)
    if (base.patch_size, base.tubelet_size) != (x_config.patch_size, x_config.tubelet_size):
        raise ValueError(
            f"{x_config.path}: patch {base.patch_size} / tubelet {base.tubelet_size}, but x_encoder says "
            f"{x_config.patch_size} / {x_config.tubelet_size}; the masks need the checkpoint's values"
        )
    base.pred_hidden_size = config.predictor.hidden_size
    base.pred_num_hidden_layers = config.predictor.num_layers
    base.pred_num_attention_heads = config.predictor.num_heads
    return base


def ema_momentum(step: int, total_steps: int, schedule: tuple[float, float]) -> float:
    """Target momentum after step `step` (0-based): linear from schedule[0] at 0 to schedule[1] at `total_steps`."""
    start, end = schedule
    return start + (end - start) * min(1.0, step / max(1, total_steps))


def tubelet_spread(video: torch.Tensor, patch: int, tubelet: int) -> torch.Tensor:
    """(B, N) pixel standard deviation of each token's tubelet, in the encoder's time-major token order."""
    batch, frames, channels, height, width = video.shape
    cells = video.reshape(batch, frames // tubelet, tubelet, channels, height // patch, patch, width // patch, patch)
    cells = cells.permute(0, 1, 4, 6, 2, 3, 5, 7).reshape(batch, -1, tubelet * channels * patch * patch)
    return cells.float().std(dim=-1)


def content_weights(spread: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-token loss weights (1 - strength) + strength * spread / mean spread: mean 1 over the batch."""
    return (1.0 - strength) + strength * spread / spread.mean().clamp_min(1e-6)


def encode_context(encoder: VJEPA2Encoder, video: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Encoder features (B, N_context, D) of the context tokens alone, at their grid positions."""
    hidden = apply_masks(encoder.embeddings(video), [context])
    for layer in encoder.layer:
        hidden = layer(hidden, context)[0]
    return encoder.layernorm(hidden)


class VJepaObjective(nn.Module):
    def __init__(self, config: EncoderPretrainConfig):
        super().__init__()
        self.content_weighting = config.content_weighting
        self.student = VJEPA2Model(pretrain_vjepa2_config(config))
        self.student.encoder.load_state_dict(XEncoder(config.x_encoder).vjepa2.encoder.state_dict())
        self.target_encoder = copy.deepcopy(self.student.encoder).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> VJepaObjective:
        super().train(mode)
        self.target_encoder.eval()
        return self

    @torch.no_grad()
    def target_features(self, video: torch.Tensor) -> torch.Tensor:
        """Layer-normed target-encoder features (B, N, D) of the whole clip."""
        hidden = self.target_encoder(pixel_values_videos=video).last_hidden_state
        return F.layer_norm(hidden, hidden.shape[-1:])

    def predict(self, video: torch.Tensor, masks: Masks) -> torch.Tensor:
        """Predicted features (B, N_target, D) of the target tokens from the context tokens (masks on video's device)."""
        context = encode_context(self.student.encoder, video, masks.context)
        batch, _, dim = context.shape
        frames, height, width = video.shape[1], video.shape[-2], video.shape[-1]
        patch, tubelet = self.student.config.patch_size, self.student.config.tubelet_size
        num_tokens = (frames // tubelet) * (height // patch) * (width // patch)
        index = masks.context.unsqueeze(-1).expand(-1, -1, dim)
        placed = context.new_zeros(batch, num_tokens, dim).scatter(1, index, context)
        return self.student.predictor(placed, [masks.context], [masks.target]).last_hidden_state

    def forward(self, video: torch.Tensor, masks: list[Masks]) -> ObjectiveOutput:
        target = self.target_features(video)
        weights = None
        if self.content_weighting:  # per token, from the pixels: the same for every mask generator
            config = self.student.config
            spread = tubelet_spread(video, config.patch_size, config.tubelet_size)
            weights = content_weights(spread, self.content_weighting)
        losses = [self.masked_loss(video, target, m, weights) for m in masks]
        return ObjectiveOutput(
            torch.stack(losses).mean(),
            [loss.item() for loss in losses],
            [(m.context.shape[1], m.target.shape[1]) for m in masks],
            feature_spread(target),
        )

    def masked_loss(
        self, video: torch.Tensor, target: torch.Tensor, masks: Masks, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """L1 between predicted and target features on the target tokens, weighted per token (B, N) if given."""
        predicted = self.predict(video, masks).float()
        wanted = apply_masks(target, [masks.target]).float()
        if weights is None:
            return F.l1_loss(predicted, wanted)
        chosen = weights.gather(1, masks.target)
        per_token = (predicted - wanted).abs().mean(dim=-1)
        return (chosen * per_token).sum() / chosen.sum()

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * context encoder."""
        target, student = list(self.target_encoder.parameters()), list(self.student.encoder.parameters())
        torch._foreach_mul_(target, momentum)
        torch._foreach_add_(target, student, alpha=1.0 - momentum)
