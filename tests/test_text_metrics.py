"""Caption metrics: the wrapper equals pycocoevalcap's scorers on pre-tokenised text."""

from __future__ import annotations

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from vljepa.eval.text_metrics import caption_metrics, tokenize

PREDICTIONS = ["A red circle slides left.", "a blue square moves up", "Someone cuts an onion!", ""]
REFERENCES = [
    ["a red circle slides to the left", "the red circle moves left"],
    ["a blue square moves up", "blue square going upward"],
    ["a person chops an onion"],
    ["the camera pans right"],
]


def test_tokenize():
    assert tokenize("  A red, circle -- slides LEFT. ") == "a red circle slides left"
    assert tokenize("don't stop") == "don't stop"


def test_matches_pycocoevalcap():
    gts = {i: [tokenize(r) for r in refs] for i, refs in enumerate(REFERENCES)}
    res = {i: [tokenize(p)] for i, p in enumerate(PREDICTIONS)}
    metrics = caption_metrics(PREDICTIONS, REFERENCES)
    assert metrics["CIDEr-D"] == pytest.approx(Cider().compute_score(gts, res)[0])
    assert metrics["BLEU-4"] == pytest.approx(Bleu(4).compute_score(gts, res, verbose=0)[0][3])
    assert metrics["ROUGE-L"] == pytest.approx(Rouge().compute_score(gts, res)[0])
    assert metrics["exact_match"] == pytest.approx(0.25)
    assert metrics["CIDEr-D"] > 0


def test_perfect_and_mismatched_inputs():
    perfect = caption_metrics([r[0] for r in REFERENCES], REFERENCES)
    assert perfect["exact_match"] == 1.0 and perfect["ROUGE-L"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        caption_metrics(["a"], [])
