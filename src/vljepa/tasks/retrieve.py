"""Text <-> video retrieval by cosine similarity of predicted and Y-encoded embeddings.

A query may have several relevant candidates (an image with five captions, searched from the image):
it scores a hit at k when any of them is in its top k, and its rank is that of the best-ranked one
(the convention of the retrieval benchmarks' standard code). Median rank is numpy's median (the mean of
the two middle ranks for an even count). A tie counts against the query (an irrelevant candidate
scoring exactly as high as the best relevant one ranks before it), so collapsed predictions score
worst rather than best; ranks come from comparisons, without sorting the whole similarity matrix.
"""

from __future__ import annotations

import torch


def relevant_ranks(similarity: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Per query (row), the 1-based rank of its best-ranked relevant candidate (column); ties rank it last."""
    if not bool(relevant.any(1).all()):
        raise ValueError("every query needs at least one relevant candidate")
    best = similarity.masked_fill(~relevant, float("-inf")).max(1, keepdim=True).values
    above = (similarity > best) | ((similarity == best) & ~relevant)
    return above.sum(1) + 1


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Rows are queries, columns candidates; a query scores a hit at k if any relevant candidate is in its top k."""
    ranks = relevant_ranks(similarity, relevant)
    return {f"R@{k}": float((ranks <= k).float().mean()) for k in ks}


def rank_statistics(similarity: torch.Tensor, relevant: torch.Tensor) -> dict[str, float]:
    """Median (MdR) and mean (MnR) rank of each query's best-ranked relevant candidate."""
    return _from_ranks(relevant_ranks(similarity, relevant), ())


def _from_ranks(ranks: torch.Tensor, ks: tuple[int, ...]) -> dict[str, float]:
    ranks = ranks.float()
    recall = {f"R@{k}": float((ranks <= k).float().mean()) for k in ks}
    return {**recall, "MdR": float(ranks.quantile(0.5)), "MnR": float(ranks.mean())}


def retrieval_metrics(
    video_embeddings: torch.Tensor, text_embeddings: torch.Tensor, relevant: torch.Tensor
) -> dict[str, float]:
    """`relevant` (texts, videos) bool. Returns t2v_R@k, t2v_MdR, t2v_MnR and the same for v2t."""
    similarity = text_embeddings @ video_embeddings.T
    t2v = _from_ranks(relevant_ranks(similarity, relevant), (1, 5, 10))
    v2t = _from_ranks(relevant_ranks(similarity.T, relevant.T), (1, 5, 10))
    return {**{f"t2v_{k}": v for k, v in t2v.items()}, **{f"v2t_{k}": v for k, v in v2t.items()}}
