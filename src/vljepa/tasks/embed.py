"""Batched, gradient-free embedding of clips (from cached tokens or frames) and of texts, in the model's
inference precision."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.vljepa import VLJepa


def predict_tokens(
    model: VLJepa, tokens: torch.Tensor, queries: list[str | None], batch_size: int = 256
) -> torch.Tensor:
    """Normalised predictions (n, shared_dim) for visual tokens (n, N, D) under one query per row."""
    with model.inference():
        rows = [
            model.predict(tokens[i : i + batch_size].float(), queries[i : i + batch_size])
            for i in range(0, len(tokens), batch_size)
        ]
    return F.normalize(torch.cat(rows), dim=-1).cpu()


def embed_texts(model: VLJepa, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Normalised Y-encoder embeddings (n, shared_dim)."""
    with model.inference():
        rows = [model.encode_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    return torch.cat(rows).cpu()
