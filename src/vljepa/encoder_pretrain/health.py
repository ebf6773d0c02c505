"""Health checks of a pretraining run: representation collapse and the loss curve.

V-JEPA: collapse (the encoder maps every clip to the same features, which the predictor then
matches trivially) is prevented by the EMA target + predictor asymmetry, and watched through
downstream probes. Ours, on a CPU budget: every logged step records the spread of the target
features across the batch (std over clips of each layer-normed token channel, averaged; ~0 means
collapse, whatever the loss says) and warns once when it falls below `collapse_threshold`; a
non-finite loss stops the run with the step; `curves.png` plots loss per mask generator and the
spread against the step.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.progress import console


def feature_spread(features: torch.Tensor) -> float:
    """Std across the batch of each (token, channel), averaged: 0 when every clip gives the same features."""
    return float(features.detach().float().std(dim=0).mean())


class CollapseWatch:
    """Warn once when the target features' spread drops below the threshold."""

    def __init__(self, threshold: float):
        self.threshold, self.warned = threshold, False

    def check(self, spread: float, step: int) -> None:
        if spread < self.threshold and not self.warned:
            self.warned = True
            console.print(
                f"[red]warning: the target encoder is collapsing[/] (feature spread {spread:.4f} < "
                f"{self.threshold} at step {step}): lower the LR, raise the EMA momentum or the batch size"
            )


def check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {float(loss)} at step {step}: lower the LR or disable bf16")


def plot_curves(metrics_path: Path, out: Path) -> None:
    """Loss per mask generator and the target spread, against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    steps = [e["global_step"] for e in entries]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    left.plot(steps, [e["loss"] for e in entries], label="mean")
    for index in range(len(entries[0]["mask_losses"]) if entries else 0):
        left.plot(steps, [e["mask_losses"][index] for e in entries], alpha=0.6, label=f"mask generator {index}")
    left.set(xlabel="step", ylabel="L1 loss", title="prediction loss (masked tokens)")
    left.legend(fontsize=8)
    right.plot(steps, [e["target_std"] for e in entries], color="tab:green")
    right.set(xlabel="step", ylabel="std across clips", title="target feature spread (0 = collapse)", ylim=(0, None))
    left.grid(alpha=0.3)
    right.grid(alpha=0.3)
    fig.savefig(out, dpi=120)
    plt.close(fig)
