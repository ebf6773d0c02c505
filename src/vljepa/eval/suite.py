"""Evaluate a model on any manifest: every task its records support, each beside its chance level.

- label records -> open-vocabulary classification over the class names (top-1/top-5), both under the
  classification prompt the model was fine-tuned with and in query-free caption mode;
- caption records -> text->video and video->text retrieval (R@1/5/10, median and mean rank) over the
  manifest's clips,
  counting either only the clip itself as a hit or (when records carry a `meaning`) any clip with a
  caption of the same meaning;
- question records -> nearest-option VQA accuracy per question type, beside chance and (with a
  training manifest) the question-only prior; a type whose questions all have the options yes/no also
  gets precision, recall, F1 ("yes" positive) and the yes-ratio (POPE's figures);
- with a Y-decoder attached: inversion, captioning and open-ended VQA through decoding (`generation.py`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from ..data.feature_cache import FeatureCache
from ..data.manifest import Record, class_names
from ..data.shards import load_records
from ..model.vljepa import VLJepa
from ..tasks.classify import classification_accuracy
from ..tasks.embed import embed_texts, predict_tokens
from ..tasks.retrieve import retrieval_metrics
from ..tasks.vqa import QuestionPrior, choose_options, yes_no_metrics
from .generation import evaluate_generation


def _classification(model: VLJepa, records: list[Record], tokens, classes: list[str]) -> dict:
    labelled = [r for r in records if r.label is not None]
    stacked = torch.stack([tokens[r.clip] for r in labelled])
    class_embeddings = embed_texts(model, classes)
    labels = [classes.index(r.label) for r in labelled]
    prompt = model.config.classification_prompt
    return {
        "num_samples": len(labelled),
        "num_classes": len(classes),
        "chance": {"top1": 1 / len(classes), "top5": min(5, len(classes)) / len(classes)},
        "prompted": classification_accuracy(
            predict_tokens(model, stacked, [prompt] * len(labelled)), class_embeddings, labels
        ),
        "caption_mode": classification_accuracy(
            predict_tokens(model, stacked, [None] * len(labelled)), class_embeddings, labels
        ),
    }


def _retrieval(model: VLJepa, records: list[Record], tokens) -> dict:
    captioned = [r for r in records if r.caption]
    clips = list(dict.fromkeys(r.clip for r in captioned))
    clip_index = {c: i for i, c in enumerate(clips)}
    videos = predict_tokens(model, torch.stack([tokens[c] for c in clips]), [None] * len(clips))
    texts = embed_texts(model, [r.caption for r in captioned])
    meanings = [r.extra.get("meaning", r.caption) for r in captioned]
    meaning_ids = {m: i for i, m in enumerate(dict.fromkeys(meanings))}
    clip_has_meaning = torch.zeros(len(clips), len(meaning_ids), dtype=torch.bool)
    exact = torch.zeros(len(captioned), len(clips), dtype=torch.bool)
    for row, (r, meaning) in enumerate(zip(captioned, meanings)):
        exact[row, clip_index[r.clip]] = True
        clip_has_meaning[clip_index[r.clip], meaning_ids[meaning]] = True
    same_meaning = clip_has_meaning[:, [meaning_ids[m] for m in meanings]].T
    return {
        "pool_clips": len(clips),
        "num_captions": len(captioned),
        "chance_R@1": 1 / len(clips),
        "chance_R@1_same_meaning": float(same_meaning.float().mean()),
        "exact": retrieval_metrics(videos, texts, exact),
        "same_meaning": retrieval_metrics(videos, texts, same_meaning),
    }


def _vqa(model: VLJepa, records: list[Record], tokens, prior: QuestionPrior | None) -> dict:
    asked = [r for r in records if r.question]
    all_answers = list(dict.fromkeys(r.answer for r in asked))
    options = [r.options or all_answers for r in asked]
    predicted = predict_tokens(model, torch.stack([tokens[r.clip] for r in asked]), [r.question for r in asked])
    distinct = list(dict.fromkeys(o for opts in options for o in opts))
    embedded = dict(zip(distinct, embed_texts(model, distinct)))
    stacks: dict[tuple[str, ...], torch.Tensor] = {}  # one tensor per distinct option list (GQA: one for all)
    for opts in options:
        if tuple(opts) not in stacks:
            stacks[tuple(opts)] = torch.stack([embedded[o] for o in opts])
    chosen = choose_options(predicted, [stacks[tuple(opts)] for opts in options])
    by_type: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    yes_no: dict[str, list[tuple[str, str]]] = defaultdict(list)  # type -> (chosen, answer) of yes/no questions
    other_options: set[str] = set()  # types with a question whose options are not yes/no
    for record, opts, choice in zip(asked, options, chosen):
        kind = record.type or "untyped"
        stats = by_type[kind]
        stats["accuracy"].append(float(opts[choice] == record.answer))
        stats["chance"].append(1 / len(opts))
        if prior is not None:
            stats["question_prior"].append(prior.expected_accuracy(record.question, opts, record.answer))
        if set(opts) == {"yes", "no"}:
            yes_no[kind].append((opts[choice], record.answer))
        else:
            other_options.add(kind)
    results = {
        kind: {"num": len(stats["accuracy"]), **{k: sum(v) / len(v) for k, v in stats.items()}}
        for kind, stats in sorted(by_type.items())
    }
    for kind, pairs in yes_no.items():
        if kind not in other_options:
            results[kind].update(yes_no_metrics([c for c, _ in pairs], [a for _, a in pairs]))
    return results


def evaluate_manifest(
    model: VLJepa,
    manifest: str | Path,
    cache: FeatureCache,
    prior_manifest: str | Path | None = None,
    progress: bool = True,
    generation: bool = True,
) -> dict:
    """All the tasks this manifest's records support; the cache's view (clip / single_frame) applies.
    `generation=False` skips the decoder-based metrics even when the model has a Y-decoder."""
    records = load_records(manifest)
    tokens = cache.tokens([r.clip for r in records], progress=progress)
    usable = [r for r in records if r.clip in tokens]
    results: dict = {
        "manifest": str(manifest),
        "view": cache.view,
        "num_records": len(records),
        "skipped_records": len(records) - len(usable),
    }
    if any(r.label is not None for r in usable):
        results["classification"] = _classification(model, usable, tokens, class_names(usable, manifest))
    if any(r.caption for r in usable):
        results["retrieval"] = _retrieval(model, usable, tokens)
    if any(r.question for r in usable):
        prior = None
        if prior_manifest is not None:
            train = [r for r in load_records(prior_manifest) if r.question]
            prior = QuestionPrior([r.question for r in train], [r.answer for r in train])
        results["vqa"] = _vqa(model, usable, tokens, prior)
    if generation and model.y_decoder is not None and any(r.caption or r.question for r in usable):
        results["generation"] = evaluate_generation(model, usable, tokens)
    return results


def validation_figures(model: VLJepa, manifest: str | Path, cache: FeatureCache) -> dict:
    """`evaluate_manifest` as training scores a `best_metric` of `eval.<figure>`: quiet and without decoding."""
    return evaluate_manifest(model, manifest, cache, progress=False, generation=False)
