"""Text <-> video retrieval by cosine similarity of predicted and Y-encoded embeddings."""

from __future__ import annotations

import torch


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Rows are queries, columns candidates; a query scores a hit at k if any relevant candidate is in its top k."""
    order = similarity.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order)
    return {f"R@{k}": float(hits[:, :k].any(1).float().mean()) for k in ks}


def retrieval_metrics(
    video_embeddings: torch.Tensor, text_embeddings: torch.Tensor, relevant: torch.Tensor
) -> dict[str, float]:
    """`relevant` (texts, videos) bool. Returns t2v_R@k and v2t_R@k."""
    similarity = text_embeddings @ video_embeddings.T
    t2v = recall_at_k(similarity, relevant)
    v2t = recall_at_k(similarity.T, relevant.T)
    return {**{f"t2v_{k}": v for k, v in t2v.items()}, **{f"v2t_{k}": v for k, v in v2t.items()}}
