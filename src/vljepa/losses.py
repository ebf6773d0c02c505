"""Loss: symmetric InfoNCE between predicted and target embeddings, in-batch negatives.

Paper: bidirectional InfoNCE on L2-normalised embeddings; the temperature is not stated (community
code uses a fixed 0.07). Identical target texts in a batch (short answers such as "left", repeated
captions) are all positives of each other (multi-positive InfoNCE): otherwise the loss would push a
correct prediction away from an identical copy of its own target. With distinct targets this is
exactly the standard InfoNCE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def positives_from_texts(texts: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, B) bool: True where two target texts are identical."""
    index = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    ids = torch.tensor([index[t] for t in texts], device=device)
    return ids[:, None] == ids[None, :]


def _multi_positive_ce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    positive_logits = logits.masked_fill(~positives, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(positive_logits, dim=1)).mean()


def info_nce(predicted: torch.Tensor, target: torch.Tensor, temperature: torch.Tensor | float,
             positives: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE; `positives` (B, B) defaults to the identity (row i matches column i).
    Computed in float32 even under autocast: bf16 logits would round the loss visibly."""
    with torch.autocast(predicted.device.type, enabled=False):
        predicted = F.normalize(predicted.float(), dim=-1)
        target = F.normalize(target.float(), dim=-1)
        logits = predicted @ target.T / temperature
    if positives is None:
        positives = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    return 0.5 * (_multi_positive_ce(logits, positives) + _multi_positive_ce(logits.T, positives.T))
