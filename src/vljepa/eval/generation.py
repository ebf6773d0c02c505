"""Evaluation through the Y-decoder: inversion of the text encoder, captioning, open-ended VQA.

- inversion: each distinct caption of the manifest is embedded by the Y-encoder and decoded back;
  exact match and CIDEr-D against that caption measure the decoder alone, with no video involved;
- captioning: each clip's query-free prediction is decoded; its references are the clip's captions,
  widened (when records carry a `meaning`) to every caption of the same meaning in the manifest,
  so a correct paraphrase is not scored as an error;
- open-ended VQA: each question's prediction is decoded with no options given; exact match of the
  normalised answer, per question type.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from ..data.manifest import ClipRef, Record
from ..model.vljepa import VLJepa
from ..tasks.embed import embed_texts, predict_tokens
from .text_metrics import caption_metrics, tokenize

NUM_EXAMPLES = 8


def decode_all(model: VLJepa, embeddings: torch.Tensor, beam_size: int = 1, batch_size: int = 256) -> list[str]:
    return [
        text
        for start in range(0, len(embeddings), batch_size)
        for text in model.decode(embeddings[start : start + batch_size], beam_size=beam_size)
    ]


def _examples(predictions: list[str], references: list[list[str]]) -> list[dict]:
    return [{"decoded": p, "references": r[:3]} for p, r in zip(predictions[:NUM_EXAMPLES], references)]


def _inversion(model: VLJepa, records: list[Record], beam_size: int) -> dict:
    captions = list(dict.fromkeys(r.caption for r in records if r.caption))
    decoded = decode_all(model, embed_texts(model, captions), beam_size)
    references = [[c] for c in captions]
    return {"num": len(captions), **caption_metrics(decoded, references), "examples": _examples(decoded, references)}


def caption_references(records: list[Record]) -> tuple[list[ClipRef], list[list[str]]]:
    """The captioned clips and, for each, its captions widened to every caption of the same meaning."""
    by_meaning: dict[str, list[str]] = defaultdict(list)
    clip_meanings: dict = defaultdict(set)
    for record in records:
        if record.caption:
            meaning = record.extra.get("meaning", record.caption)
            by_meaning[meaning].append(record.caption)
            clip_meanings[record.clip].add(meaning)
    clips = list(clip_meanings)
    return clips, [list(dict.fromkeys(c for m in sorted(clip_meanings[clip]) for c in by_meaning[m])) for clip in clips]


def _captioning(model: VLJepa, records: list[Record], tokens, beam_size: int) -> dict:
    clips, references = caption_references(records)
    decoded = decode_all(
        model, predict_tokens(model, torch.stack([tokens[c] for c in clips]), [None] * len(clips)), beam_size
    )
    return {"num_clips": len(clips), **caption_metrics(decoded, references), "examples": _examples(decoded, references)}


def _open_vqa(model: VLJepa, records: list[Record], tokens, beam_size: int) -> dict:
    asked = [r for r in records if r.question]
    predicted = predict_tokens(model, torch.stack([tokens[r.clip] for r in asked]), [r.question for r in asked])
    decoded = decode_all(model, predicted, beam_size)
    hits: dict[str, list[float]] = defaultdict(list)
    for record, answer in zip(asked, decoded):
        hits[record.type or "untyped"].append(float(tokenize(answer) == tokenize(record.answer)))
    per_type = {kind: {"num": len(v), "exact_match": sum(v) / len(v)} for kind, v in sorted(hits.items())}
    overall = [h for v in hits.values() for h in v]
    examples = [
        {"question": r.question, "decoded": d, "answer": r.answer} for r, d in zip(asked[:NUM_EXAMPLES], decoded)
    ]
    return {
        "overall": {"num": len(overall), "exact_match": sum(overall) / len(overall)},
        **per_type,
        "examples": examples,
    }


def evaluate_generation(model: VLJepa, records: list[Record], tokens, beam_size: int = 1) -> dict:
    """Decoder-based metrics for the records' captions and questions (needs `model.y_decoder`)."""
    results: dict = {"beam_size": beam_size}
    if any(r.caption for r in records):
        results["inversion"] = _inversion(model, records, beam_size)
        results["captioning"] = _captioning(model, records, tokens, beam_size)
    if any(r.question for r in records):
        results["open_vqa"] = _open_vqa(model, records, tokens, beam_size)
    return results
