"""The learning curves of a run, drawn from its `metrics.jsonl`: the training loss per stage, and each
validation top-1 (a prediction against its target within a batch). The demo's report shows them, and the
experiment trackers receive them at the end of each stage."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_learning_curves(metrics_path: Path, out: Path) -> None:
    entries = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for stage in dict.fromkeys(e["stage"] for e in entries):
        rows = [e for e in entries if e["stage"] == stage]
        left.plot([e["global_step"] for e in rows], [e["loss"] for e in rows], label=f"train loss ({stage})")
    val_keys = sorted({k for e in entries for k in e if k.startswith("val_") and k.endswith("_top1")})
    for key in val_keys:
        rows = [e for e in entries if key in e]
        right.plot([e["global_step"] for e in rows], [e[key] for e in rows], marker="o", label=key)
    left.set(xlabel="step", ylabel="InfoNCE loss", title="training loss")
    right.set(
        xlabel="step", ylabel="in-batch top-1", title="validation (prediction -> its target in a batch)", ylim=(0, 1)
    )
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
