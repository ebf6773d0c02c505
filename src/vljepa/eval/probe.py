"""Frozen-feature probes of an X-encoder: what do its tokens already encode?

V-JEPA: the encoder is frozen and an attentive probe (a learnable query cross-attending to all
tokens, one transformer block, a linear classifier) is trained on its features per task; linear
probes on pooled features are the weaker, classic alternative.
Ours: both, on the frozen tokens from the feature cache, trained on one manifest and scored on another:
`attentive` (one query, multi-head cross-attention over layer-normed tokens, a residual MLP, a linear
head; AdamW + cosine, stopped early on a held-out part of the training clips) and `linear` (logistic
regression on standardised mean-pooled tokens, solved to convergence by scikit-learn, its L2 strength
chosen on the same held-out part). Every probe is fitted `num_seeds` times (each seed draws its own
held-out part and initialisation) and reported as the mean beside the seeds' spread, so a figure
carries its noise. Tasks come from the data, not from code:
- `action` classifies every class of the training manifest (`class_names`: its labels, or `classes.txt`
  beside it), and a `probe_tasks.json` beside it may add named subsets of those classes (the built-in
  world adds `direction`, its four moves);
- a record's `probe` field (`{"task": "class", ...}`) labels its clip for named tasks; the built-in
  world gives the acting shape's `shape` and `colour`, the `count` of shapes and, per form, the `colour
  of the circle` etc. (binding a colour to a form among several shapes; reported together as
  `binding`, the test-weighted mean of those tasks).
Chance = the test set's most frequent class. The same numbers for a seeded random encoder of the same
architecture tell what pretraining added.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import XEncoderConfig
from ..core.config_loader import CheckedConfig, Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from ..core.progress import console, progress_bar
from ..data.feature_cache import FeatureCache
from ..data.manifest import ClipRef, ManifestError, Record, class_names
from ..data.shards import load_records
from ..errors import ConfigError
from ..model.x_encoder import XEncoder
from ..substrate.optim import apply_gradients, build_adamw, build_schedule

TASKS_FILE = "probe_tasks.json"  # beside the training manifest: {"task": [class, ...], ...}
PROBE_FIELD = "probe"  # a record's per-clip labels of named tasks: {"task": "class", ...}
BINDING_PREFIX = "colour of the "  # the world's per-form colour tasks, summed up as `binding`


@dataclass
class ProbeConfig(CheckedConfig):
    max_epochs: PositiveInt = 60
    patience: PositiveInt = 8  # epochs without a better held-out accuracy before the attentive probe stops
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.01
    val_fraction: Fraction = 0.1  # of the training clips, held out to stop early and to choose `linear_c`
    linear_c: tuple[PositiveFloat, ...] = (0.01, 0.1, 1.0)  # inverse L2 strengths tried by the linear probe
    num_seeds: PositiveInt = 3
    seed: NonNegativeInt = 0

    def check(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: must lie strictly between 0 and 1, got {self.val_fraction}")
        if not self.linear_c:
            raise ConfigError("linear_c: at least one value is needed")


@dataclass
class LabelledTokens:
    tokens: torch.Tensor  # (N, T, D) float32
    labels: torch.Tensor  # (N,) long, indices into the task's classes

    def __getitem__(self, rows: torch.Tensor) -> LabelledTokens:
        return LabelledTokens(self.tokens[rows], self.labels[rows])

    def split(self, fraction: float, seed: int) -> tuple[LabelledTokens, LabelledTokens]:
        """(fit, held-out): a seeded random `fraction` of the rows held out (at least one)."""
        order = torch.randperm(len(self.labels), generator=torch.Generator().manual_seed(seed))
        held = max(1, round(fraction * len(order)))
        return self[order[held:]], self[order[:held]]


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


def fit_probe(
    probe: nn.Module, train: LabelledTokens, held_out: LabelledTokens, config: ProbeConfig, seed: int
) -> nn.Module:
    """Cross-entropy, AdamW, cosine LR over at most `max_epochs` seeded shuffles; returns the probe at its best
    held-out accuracy, stopping after `patience` epochs without a better one."""
    steps_per_epoch = math.ceil(len(train.labels) / config.batch_size)
    groups = [{"params": list(probe.parameters()), "weight_decay": config.weight_decay}]  # every weight decays
    optimizer = build_adamw(groups, config.lr)
    scheduler = build_schedule(optimizer, "cosine", 0, config.max_epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, waited = -1.0, None, 0
    for _ in range(config.max_epochs):
        probe.train()
        for rows in torch.randperm(len(train.labels), generator=generator).split(config.batch_size):
            loss = F.cross_entropy(probe(train.tokens[rows]), train.labels[rows])
            loss.backward()
            apply_gradients(probe.parameters(), optimizer, scheduler, grad_clip=None)
        score = accuracy(probe.eval(), held_out)
        if score > best:
            best, best_state, waited = score, copy.deepcopy(probe.state_dict()), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    probe.load_state_dict(best_state)
    return probe.eval()


@torch.no_grad()
def accuracy(probe: nn.Module, data: LabelledTokens, batch_size: int = 256) -> float:
    predicted = torch.cat([probe(chunk).argmax(-1) for chunk in data.tokens.split(batch_size)])
    return float((predicted == data.labels).float().mean())


def attentive_scores(
    train: LabelledTokens, test: LabelledTokens, num_classes: int, config: ProbeConfig, seed: int
) -> tuple[float, float]:
    """(test, train) accuracy of an attentive probe stopped early on a seeded held-out part of `train`."""
    fit, held_out = train.split(config.val_fraction, seed)
    torch.manual_seed(seed)
    dim = train.tokens.shape[-1]
    probe = AttentiveProbe(dim, num_classes, num_heads=dim // 64 if dim % 64 == 0 else 1)
    probe = fit_probe(probe, fit, held_out, config, seed)
    return accuracy(probe, test), accuracy(probe, fit)


def linear_scores(
    train: LabelledTokens, test: LabelledTokens, num_classes: int, config: ProbeConfig, seed: int
) -> tuple[float, float]:
    """(test, train) accuracy of L2-regularised logistic regression on standardised mean-pooled tokens, its
    strength chosen on a seeded held-out part of `train`, then refitted on all of it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(data: LabelledTokens) -> tuple[np.ndarray, np.ndarray]:
        return data.tokens.mean(1).numpy(), data.labels.numpy()

    def model(c: float):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))

    fit, held_out = (features(d) for d in train.split(config.val_fraction, seed))
    best_c = max(config.linear_c, key=lambda c: model(c).fit(*fit).score(*held_out))
    final = model(best_c).fit(*features(train))
    return float(final.score(*features(test))), float(final.score(*features(train)))


PROBES = {"attentive": attentive_scores, "linear": linear_scores}


def summary(per_seed: list[float]) -> dict:
    return {"accuracy": float(np.mean(per_seed)), "std": float(np.std(per_seed)), "per_seed": per_seed}


def run_task(train: LabelledTokens, test: LabelledTokens, num_classes: int, config: ProbeConfig) -> dict[str, dict]:
    """Every probe on one task, over `num_seeds` seeds: the mean test accuracy, its spread and every seed's,
    the mean training accuracy, beside chance."""
    chance = float(torch.bincount(test.labels, minlength=num_classes).max()) / len(test.labels)
    seeds = range(config.seed, config.seed + config.num_seeds)
    results = {}
    for kind, scores in PROBES.items():
        test_scores, train_scores = zip(*(scores(train, test, num_classes, config, seed) for seed in seeds))
        results[kind] = {
            **summary(list(test_scores)),
            "train_accuracy": float(np.mean(train_scores)),
            "chance": chance,
            "num_classes": num_classes,
            "num_train": len(train.labels),
            "num_test": len(test.labels),
        }
    return results


def binding_summary(by_task: dict[str, dict]) -> dict | None:
    """The per-form colour tasks as one figure: each seed's test-weighted mean accuracy (and chance)."""
    parts = [r for task, r in by_task.items() if task.startswith(BINDING_PREFIX)]
    if not parts:
        return None
    weights = np.array([r["num_test"] for r in parts], dtype=float) / sum(r["num_test"] for r in parts)
    per_seed = [float(x) for x in np.array([r["per_seed"] for r in parts]).T @ weights]
    return {
        **summary(per_seed),
        "train_accuracy": float(np.dot([r["train_accuracy"] for r in parts], weights)),
        "chance": float(np.dot([r["chance"] for r in parts], weights)),
        "num_classes": max(r["num_classes"] for r in parts),
        "num_train": sum(r["num_train"] for r in parts),
        "num_test": sum(r["num_test"] for r in parts),
    }


# --- tasks from the data --------------------------------------------------------------------------


def class_tasks(train_manifest: str, records: list[Record]) -> dict[str, list[str]]:
    """`action` (every class of the training manifest) and the subsets a `probe_tasks.json` beside it names."""
    tasks = {"action": class_names(records, train_manifest)}
    tasks_file = Path(train_manifest).parent / TASKS_FILE
    if tasks_file.is_file():
        extra = json.loads(tasks_file.read_text())
        if not isinstance(extra, dict) or not all(
            isinstance(c, list) and all(isinstance(x, str) for x in c) for c in extra.values()
        ):
            raise ManifestError(f"{tasks_file}: expected an object mapping task names to lists of class names")
        tasks.update(extra)
    return tasks


def record_labels(record: Record, manifest: str) -> dict[str, str]:
    """A record's `probe` labels, checked: an object of task name -> non-empty class name."""
    labels = record.extra.get(PROBE_FIELD, {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v for v in labels.values()):
        raise ManifestError(f"{manifest}: a `{PROBE_FIELD}` field must map task names to class names, got {labels!r}")
    return labels


def task_labels(manifest: str, classes: dict[str, list[str]]) -> dict[str, dict[ClipRef, str]]:
    """Each task's clip -> class: the class tasks `classes` (see `class_tasks`) from `label` records, and the
    named tasks of `probe` fields. A clip keeps its first label per task."""
    labels: dict[str, dict[ClipRef, str]] = {task: {} for task in classes}
    for record in load_records(manifest):
        for task, names in classes.items():
            if record.label in names:
                labels[task].setdefault(record.clip, record.label)
        for task, name in record_labels(record, manifest).items():
            labels.setdefault(task, {}).setdefault(record.clip, name)
    return labels


def gather(clips: dict[ClipRef, str], tokens: dict[ClipRef, torch.Tensor], classes: list[str]) -> LabelledTokens | None:
    """Stack the clips that have tokens and a label among `classes` (None if there are none)."""
    usable = [c for c, label in clips.items() if c in tokens and label in classes]
    if not usable:
        return None
    return LabelledTokens(
        torch.stack([tokens[c] for c in usable]).float(),
        torch.tensor([classes.index(clips[c]) for c in usable], dtype=torch.long),
    )


def probe_encoder(
    x_encoder: XEncoderConfig,
    train_manifest: str,
    test_manifest: str,
    cache_dir: str,
    config: ProbeConfig | None = None,
    progress: bool = True,
    tasks: list[str] | None = None,
) -> dict[str, dict[str, dict]]:
    """results[probe][task] for one frozen encoder (`tasks`: only these, plus `binding` when its parts run);
    a task is skipped when its training clips have fewer than 2 classes or no test clip has one of them."""
    config = config or ProbeConfig()
    classes = class_tasks(train_manifest, load_records(train_manifest))
    train_labels, test_labels = task_labels(train_manifest, classes), task_labels(test_manifest, classes)
    names = [
        t for t in train_labels if tasks is None or t in tasks or (t.startswith(BINDING_PREFIX) and "binding" in tasks)
    ]
    cache = FeatureCache(cache_dir, XEncoder(x_encoder))
    wanted = [c for t in names for split in (train_labels, test_labels) for c in split.get(t, {})]
    tokens = cache.tokens(list(dict.fromkeys(wanted)), progress=progress)
    if cache.failed:
        console.print(
            f"[yellow]warning:[/] skipped {len(cache.failed)} unreadable clips, "
            f"e.g. {next(iter(cache.failed.values()))}"
        )
    results: dict[str, dict[str, dict]] = {kind: {} for kind in PROBES}
    with progress_bar("fitting probes (tasks)", len(names), progress, fields="{task}") as advance:
        for name in names:
            classes = sorted(set(train_labels[name].values()))
            train = gather(train_labels[name], tokens, classes)
            test = gather(test_labels.get(name, {}), tokens, classes)
            if len(classes) >= 2 and train is not None and test is not None:
                for kind, scores in run_task(train, test, len(classes), config).items():
                    results[kind][name] = scores
            advance(task=name)
    for by_task in results.values():
        binding = binding_summary(by_task)
        if binding is not None:
            by_task["binding"] = binding
    return results


def results_table(results: dict[str, dict[str, dict[str, dict]]]):
    """A rich table: one row per task (the per-form colour tasks summed up as `binding`) with its chance, one
    column per (encoder, probe): mean test accuracy +- the seeds' std, in %."""
    from rich.table import Table

    columns = [(encoder, kind) for encoder, by_probe in results.items() for kind in by_probe]
    tasks = list(dict.fromkeys(t for e, k in columns for t in results[e][k] if not t.startswith(BINDING_PREFIX)))
    table = Table(title="frozen-feature probes: test accuracy %, mean +- std over seeds")
    table.add_column("task")
    table.add_column("chance")
    for encoder, kind in columns:
        table.add_column(f"{encoder}\n{kind}", justify="right")
    for task in tasks:
        found = [results[e][k][task] for e, k in columns if task in results[e][k]]
        cells = [
            f"{100 * r['accuracy']:.1f} +- {100 * r['std']:.1f}" if (r := results[e][k].get(task)) else "n/a"
            for e, k in columns
        ]
        table.add_row(task, f"{100 * found[0]['chance']:.1f}", *cells)
    return table
