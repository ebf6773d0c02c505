"""Gradient caching: the gradients of a large contrastive batch, computed a micro-batch at a time.

Paper: InfoNCE with in-batch negatives at batch 24k (images) and 12k (video; "3k x 4 accumulation" at
32 frames), on many GPUs. Plain gradient accumulation would not reproduce it: each micro-batch's
loss would see only its own negatives, and the loss over the full batch is not a sum of per-chunk
losses.
Ours: the two-pass method of Gao et al. 2021 ("GradCache"). Pass 1 runs every micro-batch without
grad and keeps only the predicted and target embeddings (B x shared_dim, small). The InfoNCE loss of
the whole batch is computed on them, and its backward gives d loss / d embedding for every sample
(and the learnable temperature's gradient, which depends only on the embeddings). Pass 2 re-runs each
micro-batch with grad and backpropagates those cached gradients into the network. The accumulated
gradients equal the full batch's up to float rounding; memory is that of one micro-batch, compute
about one extra forward. Each micro-batch's RNG state is saved in pass 1 and restored in pass 2, so
dropout (MiniLM's 0.1 in the default Y-encoder when it trains; a Llama checkpoint's
`attention_dropout` if it sets one) draws the same masks in both passes. Under torchrun the batch loss
of pass 1 gathers every rank's embeddings first (`distributed.py`), so the cached gradients are those
of the global batch's loss and pass 2 stays local to the rank.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from ..model.vljepa import VLJepa, VLJepaOutput
from ..substrate.state import RngState

BatchLoss = Callable[[torch.Tensor, torch.Tensor], VLJepaOutput]


def grad_cache_backward(
    model: VLJepa,
    visual_tokens: Callable[[slice], torch.Tensor],
    queries: list[str | None],
    targets: list[str],
    micro_batch_size: int,
    autocast: Callable[[], AbstractContextManager],
    batch_loss: BatchLoss | None = None,
) -> VLJepaOutput:
    """Accumulate into `.grad` the gradients of the full batch's InfoNCE loss, running the model on
    `micro_batch_size` samples at a time. `visual_tokens(rows)` returns the X-encoder tokens of those
    rows of the batch (so only one micro-batch of them is on the device at once). `batch_loss(predicted,
    target)` turns these rows' embeddings into the batch's embeddings and loss (default: InfoNCE over these
    rows; under torchrun, over the rows of every rank). Returns the batch's embeddings and loss, detached."""
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be a positive number of samples, got {micro_batch_size}")
    device = model.device
    chunks = [
        slice(start, min(start + micro_batch_size, len(targets))) for start in range(0, len(targets), micro_batch_size)
    ]

    def embed(rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast():
            return model.predict(visual_tokens(rows), queries[rows]), model.y_encoder(targets[rows])

    states, predicted, target = [], [], []
    with torch.no_grad():
        for rows in chunks:
            states.append(RngState.capture(device))
            chunk_predicted, chunk_target = embed(rows)
            predicted.append(chunk_predicted)
            target.append(chunk_target)
    predicted = torch.cat(predicted).requires_grad_()
    target = torch.cat(target).requires_grad_()
    out = batch_loss(predicted, target) if batch_loss else model.loss(predicted, target, targets)
    out.loss.backward()  # d loss / d embeddings, and the learnable temperature's gradient
    for rows, state in zip(chunks, states):
        state.restore(device)
        chunk_predicted, chunk_target = embed(rows)
        torch.autograd.backward([chunk_predicted, chunk_target], [predicted.grad[rows], target.grad[rows]])
    return VLJepaOutput(out.predicted.detach(), out.target.detach(), out.loss.detach())
