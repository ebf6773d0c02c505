"""Caption metrics: CIDEr-D, BLEU-4, ROUGE-L (pycocoevalcap) and exact match.

Paper: open-ended captioning and selective decoding are scored by CIDEr (EgoExo4D, and the
controlled comparison with the token VLM).
Ours: pycocoevalcap's pure-Python scorers (its `Cider` is the CIDEr-D variant: Gaussian length
penalty, clipped counts, idf from the reference corpus). Its usual PTB tokenizer needs Java, so texts
are tokenised here instead: lowercase, every character that is not a letter, digit or apostrophe
becomes a space, whitespace collapses. Scores are corpus-level (CIDEr's idf depends on the whole
reference set), on pycocoevalcap's scale (CIDEr is not multiplied by 100).
"""

from __future__ import annotations

import re

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

_NON_WORD = re.compile(r"[^a-z0-9']+")


def tokenize(text: str) -> str:
    """Lowercase, punctuation to spaces, single-space separated tokens."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def caption_metrics(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """One prediction per item, one or more references per item -> CIDEr-D, BLEU-4, ROUGE-L, exact match."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference lists")
    if not predictions or any(not refs for refs in references):
        raise ValueError("need at least one item, and at least one reference per item")
    res = {i: [tokenize(p)] for i, p in enumerate(predictions)}
    gts = {i: [tokenize(r) for r in refs] for i, refs in enumerate(references)}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    exact = sum(res[i][0] in gts[i] for i in res) / len(res)
    return {"CIDEr-D": float(cider), "BLEU-4": float(bleu[3]), "ROUGE-L": float(rouge), "exact_match": exact}
