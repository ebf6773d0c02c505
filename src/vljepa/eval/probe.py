"""Frozen-feature probes of an X-encoder: what do its tokens already encode?

V-JEPA: the encoder is frozen and an attentive probe (a learnable query cross-attending to all
tokens, one transformer block, a linear classifier) is trained on its features per task; linear
probes on pooled features are the weaker, classic alternative.
Ours: both, on the frozen tokens from the feature cache, trained on a manifest's `label` records and
scored on another's: `attentive` (one query, multi-head cross-attention over layer-normed tokens, a
residual MLP, a linear head; seeded AdamW + cosine) and `linear` (logistic regression on standardised
mean-pooled tokens, solved to convergence by scikit-learn, so its number does not depend on an
optimiser budget). Tasks come from the data, not from code: `action` classifies every class of the
training manifest (`class_names`: its labels, or `classes.txt` beside it), and a `probe_tasks.json`
beside it may add named subsets of those classes, each a task over the clips labelled with one of them
(the built-in world adds `direction`: its four move actions, 4-way: can the features tell which way
something moves?). Chance = the
test set's most frequent class. The same numbers for a seeded random encoder of the same
architecture tell what pretraining added.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import XEncoderConfig
from ..data.feature_cache import FeatureCache
from ..data.manifest import ClipRef, ManifestError, class_names, load_manifest
from ..progress import console
from ..train.optim import build_schedule
from ..x_encoder import XEncoder

TASKS_FILE = "probe_tasks.json"  # beside the training manifest: {"task": [class, ...], ...}


@dataclass
class ProbeConfig:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    linear_c: float = 1.0  # inverse L2 strength of the logistic regression
    seed: int = 0


@dataclass
class LabelledTokens:
    tokens: torch.Tensor  # (N, T, D) float32
    labels: torch.Tensor  # (N,) long, indices into the task's classes


class AttentiveProbe(nn.Module):
    """One learnable query cross-attending to the tokens, a residual MLP, a linear classifier."""

    def __init__(self, dim: int, num_classes: int, num_heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.token_norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keys = self.token_norm(tokens)
        query = self.query.expand(len(tokens), -1, -1)
        pooled = query + self.attention(query, keys, keys, need_weights=False)[0]
        pooled = pooled + self.mlp(self.mlp_norm(pooled))
        return self.head(pooled[:, 0])


def fit_probe(probe: nn.Module, train: LabelledTokens, config: ProbeConfig) -> nn.Module:
    """Cross-entropy, AdamW, cosine LR over `epochs` seeded shuffles of the training set."""
    steps_per_epoch = math.ceil(len(train.labels) / config.batch_size)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = build_schedule(optimizer, "cosine", 0, config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    probe.train()
    for _ in range(config.epochs):
        for rows in torch.randperm(len(train.labels), generator=generator).split(config.batch_size):
            loss = F.cross_entropy(probe(train.tokens[rows]), train.labels[rows])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    return probe.eval()


@torch.no_grad()
def accuracy(probe: nn.Module, data: LabelledTokens, batch_size: int = 256) -> float:
    predicted = torch.cat([probe(chunk).argmax(-1) for chunk in data.tokens.split(batch_size)])
    return float((predicted == data.labels).float().mean())


def probe_tasks(train_manifest: str) -> dict[str, list[str]]:
    """Each task's classes: `action` (every class of the training manifest) and the subsets that a
    `probe_tasks.json` beside it names."""
    tasks = {"action": class_names(load_manifest(train_manifest), train_manifest)}
    tasks_file = Path(train_manifest).parent / TASKS_FILE
    if tasks_file.is_file():
        extra = json.loads(tasks_file.read_text())
        if not isinstance(extra, dict) or not all(
            isinstance(c, list) and all(isinstance(x, str) for x in c) for c in extra.values()
        ):
            raise ManifestError(f"{tasks_file}: expected an object mapping task names to lists of class names")
        tasks.update(extra)
    return tasks


def labelled_clips(manifest: str, classes: list[str]) -> dict[ClipRef, str]:
    """Each clip's first `label` among `classes`."""
    clips: dict[ClipRef, str] = {}
    for record in load_manifest(manifest):
        if record.label in classes:
            clips.setdefault(record.clip, record.label)
    return clips


def gather(clips: dict[ClipRef, str], tokens: dict[ClipRef, torch.Tensor], classes: list[str]) -> LabelledTokens | None:
    """Stack the clips that have tokens and a label among `classes` (None if there are none)."""
    usable = [c for c, label in clips.items() if c in tokens and label in classes]
    if not usable:
        return None
    return LabelledTokens(
        torch.stack([tokens[c] for c in usable]).float(),
        torch.tensor([classes.index(clips[c]) for c in usable], dtype=torch.long),
    )


def attentive_scores(
    train: LabelledTokens, test: LabelledTokens, num_classes: int, config: ProbeConfig
) -> tuple[float, float]:
    """(test, train) accuracy of a seeded attentive probe."""
    torch.manual_seed(config.seed)
    dim = train.tokens.shape[-1]
    probe = fit_probe(AttentiveProbe(dim, num_classes, num_heads=dim // 64 if dim % 64 == 0 else 1), train, config)
    return accuracy(probe, test), accuracy(probe, train)


def linear_scores(
    train: LabelledTokens, test: LabelledTokens, num_classes: int, config: ProbeConfig
) -> tuple[float, float]:
    """(test, train) accuracy of L2-regularised logistic regression on standardised mean-pooled tokens."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=config.linear_c, max_iter=5000))
    model.fit(train.tokens.mean(1).numpy(), train.labels.numpy())
    test_accuracy, train_accuracy = (
        float(model.score(d.tokens.mean(1).numpy(), d.labels.numpy())) for d in (test, train)
    )
    return test_accuracy, train_accuracy


PROBES = {"attentive": attentive_scores, "linear": linear_scores}


def run_task(train: LabelledTokens, test: LabelledTokens, num_classes: int, config: ProbeConfig) -> dict[str, dict]:
    """Every probe on one task: test and train accuracy beside chance."""
    chance = float(torch.bincount(test.labels, minlength=num_classes).max()) / len(test.labels)
    results = {}
    for kind, scores in PROBES.items():
        test_accuracy, train_accuracy = scores(train, test, num_classes, config)
        results[kind] = {
            "accuracy": test_accuracy,
            "train_accuracy": train_accuracy,
            "chance": chance,
            "num_classes": num_classes,
            "num_train": len(train.labels),
            "num_test": len(test.labels),
        }
    return results


def probe_encoder(
    x_encoder: XEncoderConfig,
    train_manifest: str,
    test_manifest: str,
    cache_dir: str,
    config: ProbeConfig | None = None,
    progress: bool = True,
) -> dict[str, dict[str, dict]]:
    """results[probe][task] for one frozen encoder; a task is skipped when its training clips have fewer
    than 2 classes or no test clip has one of them."""
    config = config or ProbeConfig()
    cache = FeatureCache(cache_dir, XEncoder(x_encoder))
    per_task = {
        name: (labelled_clips(train_manifest, classes), labelled_clips(test_manifest, classes))
        for name, classes in probe_tasks(train_manifest).items()
    }
    tokens = cache.tokens([c for train, test in per_task.values() for c in (*train, *test)], progress=progress)
    if cache.failed:
        console.print(
            f"[yellow]warning:[/] skipped {len(cache.failed)} unreadable clips, "
            f"e.g. {next(iter(cache.failed.values()))}"
        )
    results: dict[str, dict[str, dict]] = {kind: {} for kind in PROBES}
    for name, (train_clips, test_clips) in per_task.items():
        classes = sorted(set(train_clips.values()))
        train, test = gather(train_clips, tokens, classes), gather(test_clips, tokens, classes)
        if len(classes) < 2 or train is None or test is None:
            continue
        for kind, scores in run_task(train, test, len(classes), config).items():
            results[kind][name] = scores
    return results


def results_table(results: dict[str, dict[str, dict[str, dict]]]):
    """A rich table: one row per (encoder, probe), one column per task, test accuracy beside chance."""
    from rich.table import Table

    tasks = list(dict.fromkeys(t for by_probe in results.values() for by_task in by_probe.values() for t in by_task))
    table = Table(title="frozen-feature probes (test accuracy; chance = most frequent class)")
    for column in ("encoder", "probe", *tasks):
        table.add_column(column)
    for encoder, by_probe in results.items():
        for kind, by_task in by_probe.items():
            cells = [
                f"{100 * by_task[t]['accuracy']:.1f}% (chance {100 * by_task[t]['chance']:.1f}%)"
                if t in by_task
                else "n/a"
                for t in tasks
            ]
            table.add_row(encoder, kind, *cells)
    return table
