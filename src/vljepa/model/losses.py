"""Loss: symmetric InfoNCE between predicted and target embeddings, in-batch negatives; regression
losses for the paper's loss ablation.

Paper: bidirectional InfoNCE on L2-normalised embeddings; the temperature is not stated (community
code uses a fixed 0.07). Identical target texts in a batch (short answers such as "left", repeated
captions) are all positives of each other (multi-positive InfoNCE): otherwise the loss would push a
correct prediction away from an identical copy of its own target. With distinct targets this is
exactly the standard InfoNCE.
The paper's ablation replaces InfoNCE by cosine, L1 and L2 regression onto the target embedding
(without negatives these can collapse: a constant prediction of a constant target costs nothing).
`ModelConfig.loss` picks one (`config.LOSS_NAMES` names them); `embedding_loss` dispatches. Ours, as the
paper leaves the details open: cosine = mean over the batch of 1 - cos(predicted, target); l1 / l2 = the
mean absolute / squared difference over all elements of the L2-normalised embeddings (normalised like
InfoNCE's inputs, so that shrinking both embeddings is no way out). On unit vectors the squared
difference is 2 - 2 cos, so l2 equals cosine x 2 / dim: the same gradient direction, only scaled (which
AdamW largely undoes).
The regression losses ignore the temperature and the positives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import LOSS_NAMES
from ..core.precision import autocast_off


def positives_from_texts(texts: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, B) bool: True where two target texts are identical."""
    index = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    ids = torch.tensor([index[t] for t in texts], device=device)
    return ids[:, None] == ids[None, :]


def _multi_positive_ce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    positive_logits = logits.masked_fill(~positives, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(positive_logits, dim=1)).mean()


def info_nce(
    predicted: torch.Tensor,
    target: torch.Tensor,
    temperature: torch.Tensor | float,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE; `positives` (B, B) defaults to the identity (row i matches column i).
    Computed in float32 even under autocast: bf16 logits would round the loss visibly."""
    with autocast_off(predicted.device.type):
        predicted = F.normalize(predicted.float(), dim=-1)
        target = F.normalize(target.float(), dim=-1)
        logits = predicted @ target.T / temperature
    if positives is None:
        positives = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    return 0.5 * (_multi_positive_ce(logits, positives) + _multi_positive_ce(logits.T, positives.T))


REGRESSION_LOSSES = {
    "cosine": lambda predicted, target: (1 - (predicted * target).sum(-1)).mean(),
    "l1": lambda predicted, target: (predicted - target).abs().mean(),
    "l2": lambda predicted, target: (predicted - target).pow(2).mean(),
}


def check_loss_name(name: str) -> None:
    if name not in LOSS_NAMES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSS_NAMES)}")


def batch_loss(
    name: str, predicted: torch.Tensor, target: torch.Tensor, temperature: torch.Tensor | float, target_texts: list[str]
) -> torch.Tensor:
    """The loss of a batch (B, dim) whose rows' target texts are `target_texts`: identical texts are positives
    of each other. The one place the training loss is computed, for `VLJepa.forward` and for the trainer."""
    return embedding_loss(name, predicted, target, temperature, positives_from_texts(target_texts, predicted.device))


def embedding_loss(
    name: str,
    predicted: torch.Tensor,
    target: torch.Tensor,
    temperature: torch.Tensor | float,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss `name` (one of LOSS_NAMES) between predicted and target embeddings (B, dim), in float32."""
    check_loss_name(name)
    if name == "infonce":
        return info_nce(predicted, target, temperature, positives)
    with autocast_off(predicted.device.type):
        return REGRESSION_LOSSES[name](F.normalize(predicted.float(), dim=-1), F.normalize(target.float(), dim=-1))
