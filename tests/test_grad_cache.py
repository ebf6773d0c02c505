"""Gradient caching and gradient checkpointing give the full batch's loss and gradients."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
from conftest import tiny_model_config

from vljepa.model import VLJepa
from vljepa.model.losses import info_nce, positives_from_texts
from vljepa.train.grad_cache import grad_cache_backward
from vljepa.train.trainer import enable_gradient_checkpointing

# Mixed query lengths (micro-batches pad differently from the full batch) and repeated targets (multi-positive).
QUERIES = [None, "which way?", None, "what colour is the square?", "which way?", None, "what?", None]
TARGETS = ["left", "a red square", "left", "blue", "right", "a green circle", "right", "a red square"]


@pytest.fixture(scope="module")
def model() -> VLJepa:
    """Tiny fp32 model whose text model trains (MiniLM, dropout 0.1) and whose temperature is learnable."""
    torch.manual_seed(0)
    config = tiny_model_config()
    config.learnable_temperature = True
    return VLJepa(config)


@pytest.fixture(scope="module")
def tokens(model) -> torch.Tensor:
    return torch.randn(len(TARGETS), 6, model.x_encoder.embed_dim, generator=torch.Generator().manual_seed(1))


def take_grads(model: VLJepa) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def assert_same_grads(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor], atol: float) -> None:
    assert expected.keys() == actual.keys()
    assert "log_inverse_temperature" in expected and any(k.startswith("y_encoder.text_model.") for k in expected)
    for name in expected:  # atol: some grads are exactly 0 in theory (attention key biases), ~1e-9 in float
        assert torch.allclose(expected[name], actual[name], rtol=1e-4, atol=atol), name


def grad_cached(model, tokens, micro_batch_size, seed=2):
    torch.manual_seed(seed)
    out = grad_cache_backward(model, lambda rows: tokens[rows], QUERIES, TARGETS, micro_batch_size, nullcontext)
    return out.loss, take_grads(model)


@pytest.mark.parametrize("micro_batch_size", [2, 3])  # 3: a last micro-batch of 2
def test_micro_batches_give_the_full_batch_loss_and_gradients(model, tokens, micro_batch_size):
    model.eval()  # dropout off, so the full batch and the micro-batches compute the same function
    loss = model(tokens, QUERIES, TARGETS).loss
    loss.backward()
    full = take_grads(model)
    cached_loss, cached = grad_cached(model, tokens, micro_batch_size)
    assert float(cached_loss) == pytest.approx(loss.item(), rel=1e-6)
    assert_same_grads(full, cached, atol=1e-5)  # measured: max abs difference ~2e-6 on gradients of size ~1


def test_dropout_masks_are_replayed_in_the_second_pass(model, tokens):
    """In train mode the reference keeps the graph of the same micro-batches (same RNG draws, in order)."""
    model.train()
    torch.manual_seed(2)
    predicted, target = zip(
        *[
            (model.predict(tokens[rows], QUERIES[rows]), model.y_encoder(TARGETS[rows]))
            for rows in (slice(0, 3), slice(3, 6), slice(6, 8))
        ]
    )
    loss = info_nce(torch.cat(predicted), torch.cat(target), model.temperature, positives_from_texts(TARGETS))
    loss.backward()
    reference = take_grads(model)
    cached_loss, cached = grad_cached(model, tokens, 3)
    assert float(cached_loss) == pytest.approx(loss.item(), rel=1e-6)
    assert_same_grads(reference, cached, atol=1e-5)


def test_a_single_micro_batch_is_the_plain_step(model, tokens):
    model.train()
    torch.manual_seed(2)
    loss = model(tokens, QUERIES, TARGETS).loss
    loss.backward()
    plain = take_grads(model)
    cached_loss, cached = grad_cached(model, tokens, len(TARGETS))
    assert cached_loss.item() == loss.item()
    assert_same_grads(plain, cached, atol=0.0)


def test_micro_batch_size_must_be_positive(model, tokens):
    with pytest.raises(ValueError, match="micro_batch_size must be a positive"):
        grad_cache_backward(model, lambda rows: tokens[rows], QUERIES, TARGETS, 0, nullcontext)


def test_gradient_checkpointing_recomputes_and_keeps_loss_and_gradients(model, tokens):
    plain, checkpointed = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    enable_gradient_checkpointing(checkpointed)
    results = []
    for candidate in (plain, checkpointed):
        calls = {"predictor": 0, "text_model": 0}  # pre-hooks: a recompute stops early, before forward hooks
        candidate.predictor.llama.layers[0].mlp.register_forward_pre_hook(
            lambda *_, calls=calls: calls.__setitem__("predictor", calls["predictor"] + 1)
        )
        candidate.y_encoder.text_model[0].auto_model.encoder.layer[0].attention.register_forward_pre_hook(
            lambda *_, calls=calls: calls.__setitem__("text_model", calls["text_model"] + 1)
        )
        torch.manual_seed(2)  # train mode: the text model's dropout draws the same masks in both
        loss = candidate(tokens, QUERIES, TARGETS).loss
        loss.backward()
        results.append((loss.item(), take_grads(candidate), calls))
    (plain_loss, plain_grads, plain_calls), (loss, grads, calls) = results
    assert plain_calls == {"predictor": 1, "text_model": 1} and calls == {"predictor": 2, "text_model": 2}
    assert loss == plain_loss
    assert_same_grads(plain_grads, grads, atol=1e-6)
