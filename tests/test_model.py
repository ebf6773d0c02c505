"""The four-part contract: shapes, frozen-ness, bidirectional attention, from_llama, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_model_config
from transformers import AutoTokenizer, LlamaConfig, LlamaModel

from vljepa.config import PredictorConfig
from vljepa.model import VLJepa
from vljepa.model.predictor import Predictor, attention_mask_4d, default_tokenizer_path
from vljepa.train.trainer import parameter_groups


def test_shapes_and_normalisation(model_config):
    torch.manual_seed(0)
    model = VLJepa(model_config)
    frames = torch.randint(0, 255, (2, 4, 40, 48, 3), dtype=torch.uint8)
    tokens = model.visual_tokens(frames)
    # (T / tubelet) * (S / patch)^2 tokens of the encoder's width
    assert tokens.shape == (2, 2 * 4 * 4, model.x_encoder.embed_dim)
    video = model.encode_video(frames, ["which way?", None])
    text = model.encode_text(["a red square", "left", "right"])
    assert video.shape == (2, 32) and text.shape == (3, 32)
    assert torch.allclose(video.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(text.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert model.encode_video(frames, normalize=False).norm(dim=-1).sub(1).abs().max() > 1e-3


def test_x_encoder_stays_frozen(model_config):
    model = VLJepa(model_config)
    model.train()
    assert not model.x_encoder.training and not model.x_encoder.vjepa2.training
    assert all(not p.requires_grad for p in model.x_encoder.parameters())
    frames = torch.randint(0, 255, (2, 4, 32, 32, 3), dtype=torch.uint8)
    out = model(model.visual_tokens(frames), [None, None], ["a", "b"])
    out.loss.backward()
    assert all(p.grad is None for p in model.x_encoder.parameters())
    optimizer_params = {id(p) for group in parameter_groups(model, 1e-3, 0.05) for p in group["params"]}
    assert not optimizer_params & {id(p) for p in model.x_encoder.parameters()}


@pytest.mark.parametrize("head_lr_multiplier", [1.0, 0.05])
def test_y_encoder_learning_rate_multipliers(model_config, head_lr_multiplier):
    model_config.y_encoder.head_lr_multiplier = head_lr_multiplier
    model = VLJepa(model_config)
    groups = parameter_groups(model, 1e-3, 0.05)
    part = {id(p): "text" for p in model.y_encoder.text_model.parameters()}
    part |= {id(p): "head" for p in model.y_encoder.head.parameters()}
    multiplier = {"text": model_config.y_encoder.lr_multiplier, "head": head_lr_multiplier, "rest": 1.0}
    for group in groups:
        assert all(group["lr"] == pytest.approx(1e-3 * multiplier[part.get(id(p), "rest")]) for p in group["params"])
        assert all(p.ndim >= 2 for p in group["params"]) == (group["weight_decay"] > 0)
    assert sum(len(group["params"]) for group in groups) == sum(p.requires_grad for p in model.parameters())


def test_loss_is_about_log_batch_at_init(model_config):
    torch.manual_seed(0)
    model_config.shared_dim = 256  # the default width: random cosines ~ 1/16, so logits stay near-uniform
    model = VLJepa(model_config)
    frames = torch.randint(0, 255, (16, 4, 32, 32, 3), dtype=torch.uint8)
    captions = [f"caption number {i} about a {c} shape" for i, c in enumerate("abcdefghijklmnop")]
    loss = model(model.visual_tokens(frames), [None] * 16, captions).loss
    assert abs(loss.item() - math.log(16)) < 0.1 * math.log(16)


def _predictor(bidirectional: bool, attention: str = "sdpa", pooling: str = "mean") -> Predictor:
    torch.manual_seed(0)
    config = PredictorConfig(
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        intermediate_size=64,
        bidirectional=bidirectional,
        attention=attention,
        pooling=pooling,
    )
    return Predictor(config, visual_dim=16, shared_dim=8).eval()


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_later_query_token_changes_earlier_visual_output(attention):
    visual = torch.randn(1, 5, 16)
    mask = torch.ones(1, 3, dtype=torch.bool)
    first, second = torch.tensor([[10, 11, 12]]), torch.tensor([[10, 11, 99]])
    bidirectional = _predictor(True, attention)
    a, _ = bidirectional.hidden_states(visual, first, mask)
    b, _ = bidirectional.hidden_states(visual, second, mask)
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4  # position 0 saw the last query token
    causal = _predictor(False, attention)
    a, _ = causal.hidden_states(visual, first, mask)
    b, _ = causal.hidden_states(visual, second, mask)
    assert torch.allclose(a[0, :7], b[0, :7], atol=1e-6)  # causal: earlier positions cannot see it


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_padding_does_not_change_prediction(attention):
    predictor = _predictor(True, attention)
    visual = torch.randn(1, 5, 16)
    short = predictor(visual, torch.tensor([[10, 11]]), torch.ones(1, 2, dtype=torch.bool))
    padded = predictor(visual, torch.tensor([[10, 11, 0, 0]]), torch.tensor([[True, True, False, False]]))
    assert torch.allclose(short, padded, atol=1e-5)


def test_query_pooling_averages_the_query_positions_or_every_position_without_a_query():
    visual = torch.randn(3, 5, 16)
    ids = torch.tensor([[10, 11, 12], [13, 0, 0], [0, 0, 0]])
    mask = torch.tensor([[True] * 3, [True, False, False], [False] * 3])
    mean, query = _predictor(True, pooling="mean"), _predictor(True, pooling="query")
    hidden, _ = query.hidden_states(visual, ids, mask)
    expected = torch.stack([hidden[0, 5:8].mean(0), hidden[1, 5], hidden[2, :5].mean(0)])
    assert torch.allclose(query(visual, ids, mask), query.out_proj(expected), atol=1e-6)
    assert torch.allclose(mean(visual, ids, mask)[2], query(visual, ids, mask)[2], atol=1e-6)  # same weights
    assert not torch.allclose(mean(visual, ids, mask)[0], query(visual, ids, mask)[0], atol=1e-3)


def test_eager_and_sdpa_attention_agree():
    visual = torch.randn(2, 5, 16)
    ids, mask = torch.tensor([[10, 11, 12], [13, 0, 0]]), torch.tensor([[True] * 3, [True, False, False]])
    sdpa, eager = _predictor(True, "sdpa"), _predictor(True, "eager")
    assert (sdpa.llama.config._attn_implementation, eager.llama.config._attn_implementation) == ("sdpa", "eager")
    assert torch.allclose(sdpa(visual, ids, mask), eager(visual, ids, mask), atol=1e-5)
    with pytest.raises(ValueError, match="attention"):
        _predictor(True, "flash")


def test_from_llama_reproduces_the_checkpoint_layers(tmp_path):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_path())
    full = LlamaModel(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=64,
        )
    ).eval()
    full.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    predictor = Predictor.from_llama(str(tmp_path), 2, PredictorConfig(), visual_dim=16, shared_dim=8).eval()
    assert len(predictor.llama.layers) == 2
    assert torch.equal(predictor.llama.embed_tokens.weight, full.embed_tokens.weight)

    inputs = torch.randn(2, 7, 32)
    padding = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    mask = attention_mask_4d(padding, bidirectional=True)
    positions = torch.arange(7)[None]
    with torch.no_grad():
        reference = inputs
        rotary = full.rotary_emb(inputs, position_ids=positions)
        for layer in full.layers[2:]:
            reference = layer(reference, attention_mask=mask, position_embeddings=rotary, position_ids=positions)
        reference = full.norm(reference)
        ours = predictor.llama(inputs_embeds=inputs, attention_mask=mask, use_cache=False).last_hidden_state
    assert torch.allclose(ours[padding], reference[padding], atol=1e-5)


def test_save_load_round_trip_is_bit_exact(tmp_path, model_config):
    torch.manual_seed(0)
    model = VLJepa(model_config)
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the init: a reload must not just re-initialise
    model.save_pretrained(tmp_path)
    loaded = VLJepa.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    tokens = torch.randn(2, 32, model.x_encoder.embed_dim)
    assert torch.equal(model.eval().predict(tokens, ["q", None]), loaded.eval().predict(tokens, ["q", None]))


def test_checkpoint_refuses_another_x_encoder(tmp_path, model_config):
    VLJepa(model_config).save_pretrained(tmp_path)
    other = tiny_model_config()
    other.x_encoder.seed = 1
    model = VLJepa(other)
    try:
        model.load_trained_state(tmp_path / "model.safetensors")
    except ValueError as error:
        assert "X-encoder" in str(error)
    else:
        raise AssertionError("loading weights trained on another X-encoder must fail")
