"""InfoNCE against a reference formula, multi-positive handling, the ablation's regression losses, and the
retrieval/VQA metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vljepa.config import LOSS_NAMES, ModelConfig
from vljepa.model.losses import REGRESSION_LOSSES, embedding_loss, info_nce, positives_from_texts
from vljepa.tasks.classify import classification_accuracy
from vljepa.tasks.retrieve import recall_at_k
from vljepa.tasks.vqa import QuestionPrior


def reference_info_nce(predicted, target, temperature):
    """CLIP's formula: mean of the two cross-entropies over normalised similarity / T."""
    logits = F.normalize(predicted, dim=-1) @ F.normalize(target, dim=-1).T / temperature
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def test_info_nce_matches_reference():
    torch.manual_seed(0)
    predicted, target = torch.randn(8, 16), torch.randn(8, 16)
    for temperature in (0.07, 0.5, 1.0):
        assert torch.allclose(
            info_nce(predicted, target, temperature), reference_info_nce(predicted, target, temperature)
        )


def test_info_nce_is_log_batch_for_uninformative_embeddings():
    predicted = torch.ones(8, 4)
    target = torch.randn(8, 4) * 1e-3 + 1
    assert abs(info_nce(predicted, target, 1.0).item() - torch.log(torch.tensor(8.0)).item()) < 1e-3


def test_identical_targets_are_positives():
    texts = ["left", "right", "left", "up"]
    positives = positives_from_texts(texts)
    assert positives.tolist() == [
        [True, False, True, False],
        [False, True, False, False],
        [True, False, True, False],
        [False, False, False, True],
    ]
    # two predictions equal to the shared target of "left" are not penalised against each other
    target = torch.eye(4)[[0, 1, 0, 3]]
    multi = info_nce(target.clone(), target, 0.05, positives)
    single = info_nce(target.clone(), target, 0.05)
    assert multi < 1e-3 < single


def test_regression_losses_on_unit_directions():
    predicted = torch.tensor([[3.0, 0.0], [0.0, 2.0]])  # the scale does not matter: both sides are normalised
    same, orthogonal = torch.tensor([[1.0, 0.0], [0.0, 5.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    opposite = -predicted
    assert embedding_loss("cosine", predicted, same, 0.07).item() == pytest.approx(0.0)
    assert embedding_loss("cosine", predicted, orthogonal, 0.07).item() == pytest.approx(1.0)
    assert embedding_loss("cosine", predicted, opposite, 0.07).item() == pytest.approx(2.0)
    assert embedding_loss("l1", predicted, orthogonal, 0.07).item() == pytest.approx(1.0)  # |1-0|, |0-1| per row
    assert embedding_loss("l1", predicted, opposite, 0.07).item() == pytest.approx(1.0)  # (2 + 0) / 2
    assert embedding_loss("l2", predicted, orthogonal, 0.07).item() == pytest.approx(1.0)
    assert embedding_loss("l2", predicted, opposite, 0.07).item() == pytest.approx(2.0)  # (4 + 0) / 2


def test_l2_is_cosine_scaled_on_normalised_embeddings():
    torch.manual_seed(0)
    predicted, target = torch.randn(8, 16), torch.randn(8, 16)
    cosine = embedding_loss("cosine", predicted, target, 0.07)
    assert torch.allclose(embedding_loss("l2", predicted, target, 0.07), cosine * 2 / 16)


def test_infonce_dispatch_and_collapse_costs_only_infonce():
    torch.manual_seed(0)
    predicted, target = torch.randn(8, 16), torch.randn(8, 16)
    assert torch.equal(embedding_loss("infonce", predicted, target, 0.07), info_nce(predicted, target, 0.07))
    constant = torch.ones(8, 16)  # every prediction and every target the same vector: a collapsed solution
    for name in ("cosine", "l1", "l2"):
        assert embedding_loss(name, constant, constant, 0.07).item() == pytest.approx(0.0, abs=1e-6)
    assert embedding_loss("infonce", constant, constant, 1.0).item() == pytest.approx(math.log(8))


def test_every_configurable_loss_is_implemented():
    assert LOSS_NAMES == ("infonce", *REGRESSION_LOSSES)  # config names them, model/losses.py computes them


def test_unknown_loss_name_is_rejected():
    with pytest.raises(ValueError, match="unknown loss 'mse'; choose from infonce, cosine, l1, l2"):
        embedding_loss("mse", torch.ones(2, 4), torch.ones(2, 4), 0.07)
    with pytest.raises(ValueError, match="loss: must be one of infonce, cosine, l1, l2; got 'mse'"):
        ModelConfig(loss="mse")


def test_recall_at_k_counts_any_relevant_candidate():
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1]])
    relevant = torch.tensor([[False, False, True], [True, False, True]])
    recall = recall_at_k(similarity, relevant, ks=(1, 2))
    assert recall == {"R@1": 0.0, "R@2": 1.0}


def test_classification_top_k():
    classes = torch.eye(3)
    predicted = torch.tensor([[1.0, 0.2, 0.0], [0.0, 0.5, 0.9], [0.6, 0.8, 0.0]])
    accuracy = classification_accuracy(predicted, classes, labels=[0, 1, 0], ks=(1, 2))
    assert accuracy == pytest.approx({"top1": 1 / 3, "top2": 1.0})


def test_question_prior():
    prior = QuestionPrior(["is there a cat?"] * 3 + ["colour?"], ["yes", "yes", "no", "red"])
    assert prior.expected_accuracy("is there a cat?", ["yes", "no"], "yes") == 1.0
    assert prior.expected_accuracy("is there a cat?", ["yes", "no"], "no") == 0.0
    assert prior.expected_accuracy("unseen question", ["blue", "green"], "blue") == 0.5
