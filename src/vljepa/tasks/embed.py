"""Batched, gradient-free embedding of clips (from cached tokens or frames) and of texts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import VLJepa


@torch.no_grad()
def predict_tokens(model: VLJepa, tokens: torch.Tensor, queries: list[str | None], batch_size: int = 256) -> torch.Tensor:
    """Normalised predictions (n, shared_dim) for visual tokens (n, N, D) under one query per row."""
    was_training = model.training
    model.eval()
    rows = [model.predict(tokens[i:i + batch_size].float(), queries[i:i + batch_size]).float()
            for i in range(0, len(tokens), batch_size)]
    model.train(was_training)
    return F.normalize(torch.cat(rows), dim=-1).cpu()


@torch.no_grad()
def embed_texts(model: VLJepa, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Normalised Y-encoder embeddings (n, shared_dim)."""
    was_training = model.training
    model.eval()
    rows = [model.encode_text(texts[i:i + batch_size]).float() for i in range(0, len(texts), batch_size)]
    model.train(was_training)
    return torch.cat(rows).cpu()
