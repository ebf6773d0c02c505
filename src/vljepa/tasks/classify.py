"""Open-vocabulary classification: the nearest class-name embedding to the prediction (no decoding)."""

from __future__ import annotations

import torch


def rank_classes(predicted: torch.Tensor, class_embeddings: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (scores, class indices) per row; both inputs L2-normalised."""
    scores = predicted @ class_embeddings.T
    return scores.topk(min(k, scores.shape[1]), dim=1)


def classification_accuracy(
    predicted: torch.Tensor, class_embeddings: torch.Tensor, labels: list[int], ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    _, top = rank_classes(predicted, class_embeddings, max(ks))
    truth = torch.tensor(labels)[:, None]
    return {f"top{k}": float((top[:, :k] == truth).any(1).float().mean()) for k in ks}
