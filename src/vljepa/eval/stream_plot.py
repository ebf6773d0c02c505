"""The timeline of a captioned stream: how fast the meaning changes, where segments cut, what was said."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..tasks.stream_captioner import StreamResult  # noqa: E402


def embedding_change(embeddings: np.ndarray) -> np.ndarray:
    """Cosine distance between consecutive (normalised) window embeddings, (W - 1,)."""
    return 1.0 - np.sum(embeddings[1:] * embeddings[:-1], axis=-1)


def plot_stream_timeline(
    result: StreamResult, out: str | Path, title: str = "", reference: list[dict] | None = None
) -> Path:
    """Embedding change over time, segment boundaries and decoded captions (and, if given, the
    reference segments with their captions) as a PNG."""
    rows = 2 if reference else 1
    figure, axes = plt.subplots(
        rows, 1, figsize=(max(10.0, result.duration / 4), 2.8 * rows + 1.2), sharex=True, squeeze=False
    )
    axis = axes[0, 0]
    if len(result.times) > 1:
        axis.plot(
            0.5 * (result.times[1:] + result.times[:-1]), embedding_change(result.embeddings), color="tab:blue", lw=1
        )
    for segment in result.segments[1:]:
        axis.axvline(segment.start, color="tab:red", lw=0.8, alpha=0.7)
    top = axis.get_ylim()[1]
    for caption in result.captions:
        axis.plot(caption.time, 0, "v", color="tab:red", ms=5)
        axis.text(caption.time, top, textwrap.fill(caption.text, 24), rotation=90, va="top", ha="center", fontsize=6)
    axis.set_ylabel("embedding change\n(1 - cos, consecutive windows)")
    axis.set_title(
        title
        or f"{len(result.captions)} decodes in {result.duration:.1f} s "
        f"({len(result.captions) / max(result.duration, 1e-9):.2f} per second)"
    )
    if reference:
        ref_axis = axes[1, 0]
        for segment in reference:
            ref_axis.axvline(segment["start"], color="black", lw=0.8, alpha=0.6)
            ref_axis.text(
                0.5 * (segment["start"] + segment["end"]),
                0.95,
                textwrap.fill(segment["caption"], 24),
                rotation=90,
                va="top",
                ha="center",
                fontsize=6,
            )
        ref_axis.set_yticks([])
        ref_axis.set_ylabel("reference")
    axes[-1, 0].set_xlabel("time (s)")
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
