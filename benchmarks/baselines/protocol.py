"""The comparison's evaluation: the same tasks, references and metrics for any answerer.

Paper: the controlled comparison reports captioning CIDEr and top-5 classification against samples
seen. Ours, on a test manifest and a world-prediction manifest, for either answerer (`answerers.py`):
- captioning: one caption per captioned clip, CIDEr-D (+ BLEU-4, ROUGE-L, exact match) against the
  clip's captions widened to every caption of the same meaning (as `eval/generation.py`);
- classification: top-1/top-5 over the class names under the classification prompt (as `eval/suite.py`);
- multiple-choice VQA: accuracy over the record's options (else every answer of the split), per
  question type and over all questions;
- world prediction: the same multiple-choice protocol on the world-prediction manifest;
- open-ended VQA: exact match of the (normalised) generated answer, no options given.
Each task's wall time is recorded beside its score.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from vljepa.data.feature_cache import FeatureCache
from vljepa.data.manifest import ClipRef, Record, class_names, load_manifest
from vljepa.eval.generation import caption_references
from vljepa.eval.text_metrics import caption_metrics, tokenize

NUM_EXAMPLES = 5


@dataclass
class Split:
    """A manifest's usable records and their cached visual tokens."""

    manifest: str
    records: list[Record]
    tokens: dict

    @classmethod
    def load(cls, manifest: str | Path, cache: FeatureCache, progress: bool = True) -> Split:
        records = load_manifest(manifest)
        tokens = cache.tokens([r.clip for r in records], progress=progress)
        return cls(str(manifest), [r for r in records if r.clip in tokens], tokens)

    def stack(self, clips: list[ClipRef]) -> torch.Tensor:
        """The clips' tokens (n, N, D)."""
        return torch.stack([self.tokens[clip] for clip in clips])


def _timed(results: dict, name: str, task, *args) -> None:
    began = time.perf_counter()
    results[name] = task(*args)
    results[name]["seconds"] = time.perf_counter() - began


def captioning(answerer, split: Split) -> dict:
    clips, references = caption_references(split.records)
    captions = answerer.caption(split.stack(clips))
    examples = [{"caption": c, "references": r[:3]} for c, r in zip(captions[:NUM_EXAMPLES], references)]
    return {"num_clips": len(clips), **caption_metrics(captions, references), "examples": examples}


def classification(answerer, split: Split, prompt: str) -> dict:
    labelled = [r for r in split.records if r.label is not None]
    classes = class_names(labelled, split.manifest)
    scores = answerer.rank(split.stack([r.clip for r in labelled]), prompt, classes)
    top = scores.topk(min(5, len(classes)), dim=1).indices
    truth = torch.tensor([classes.index(r.label) for r in labelled])[:, None]
    return {
        "num_samples": len(labelled),
        "num_classes": len(classes),
        "top1": float((top[:, :1] == truth).any(1).float().mean()),
        "top5": float((top == truth).any(1).float().mean()),
        "chance": {"top1": 1 / len(classes), "top5": min(5, len(classes)) / len(classes)},
    }


def multiple_choice(answerer, split: Split) -> dict:
    asked = [r for r in split.records if r.question]
    all_answers = list(dict.fromkeys(r.answer for r in asked))
    options = [r.options or all_answers for r in asked]
    chosen = answerer.choose(split.stack([r.clip for r in asked]), [r.question for r in asked], options)
    by_type: dict[str, list[float]] = defaultdict(list)
    chance: dict[str, list[float]] = defaultdict(list)
    for record, opts, choice in zip(asked, options, chosen):
        by_type[record.type or "untyped"].append(float(opts[choice] == record.answer))
        chance[record.type or "untyped"].append(1 / len(opts))
    hits = [h for v in by_type.values() for h in v]
    return {
        "num": len(hits),
        "accuracy": sum(hits) / len(hits),
        "chance": sum(1 / len(o) for o in options) / len(hits),
        "per_type": {
            k: {"num": len(v), "accuracy": sum(v) / len(v), "chance": sum(chance[k]) / len(v)}
            for k, v in sorted(by_type.items())
        },
    }


def open_vqa(answerer, split: Split) -> dict:
    asked = [r for r in split.records if r.question]
    answers = answerer.answer(split.stack([r.clip for r in asked]), [r.question for r in asked])
    hits = [float(tokenize(a) == tokenize(r.answer)) for r, a in zip(asked, answers)]
    examples = [
        {"question": r.question, "answer": a, "expected": r.answer} for r, a in zip(asked[:NUM_EXAMPLES], answers)
    ]
    return {"num": len(hits), "exact_match": sum(hits) / len(hits), "examples": examples}


def evaluate(answerer, test: Split, world: Split, prompt: str) -> dict:
    """Every task of the comparison for one answerer (each with its wall time in seconds)."""
    results: dict = {}
    _timed(results, "captioning", captioning, answerer, test)
    _timed(results, "classification", classification, answerer, test, prompt)
    _timed(results, "mc_vqa", multiple_choice, answerer, test)
    _timed(results, "world_prediction", multiple_choice, answerer, world)
    _timed(results, "open_vqa", open_vqa, answerer, test)
    return results
