"""Y-decoder: inverts Y-encoder embeddings of a few texts, beam >= greedy, exact save/load."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_same_weights
from torch import nn

from vljepa.config import YEncoderConfig
from vljepa.model.causal_lm import corpus_vocabulary
from vljepa.model.y_decoder import YDecoder, YDecoderConfig
from vljepa.model.y_encoder import YEncoder
from vljepa.train.decoder import DecoderTrainConfig, Phase, TextPairs, fit_decoder

TEXTS = [
    "a red circle slides left",
    "a blue square moves up",
    "two green dots spin",
    "the hand picks up a cup",
    "a person opens the door",
    "someone cuts an onion",
    "a yellow ball bounces",
    "the camera pans right",
]
TINY = YDecoderConfig(
    shared_dim=32,
    prefix_tokens=2,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    intermediate_size=64,
    max_text_tokens=12,
    noise_std=0.1,
    vocabulary=corpus_vocabulary(TEXTS),
)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    with torch.no_grad():
        embeddings = YEncoder(YEncoderConfig(lr_multiplier=0), shared_dim=32)(TEXTS)
    decoder = YDecoder(TINY)
    settings = DecoderTrainConfig(batch_size=8, lr=3e-3, warmup_steps=10, bf16=False)
    log = fit_decoder(decoder, [Phase("inversion", [TextPairs(embeddings, TEXTS)], 250)], settings, progress=False)
    return decoder, embeddings, [entry["loss"] for entry in log]


def test_overfits_to_exact_reconstruction(trained):
    decoder, embeddings, losses = trained
    assert losses[-1] < 0.1 * losses[0]
    assert decoder.decode(embeddings) == TEXTS
    assert decoder.decode(embeddings[3:4]) == TEXTS[3:4]


def test_beam_at_least_as_likely_as_greedy(trained):
    decoder, embeddings, _ = trained
    noise = torch.randn(embeddings.shape, generator=torch.Generator().manual_seed(0))
    mixed = 0.5 * (embeddings + embeddings.roll(1, 0)) + 0.3 * noise  # off the training texts: greedy may err
    greedy = decoder.decode(mixed, max_new_tokens=8)
    beam = decoder.decode(mixed, beam_size=4, max_new_tokens=8)
    assert all(isinstance(text, str) for text in beam) and len(beam) == len(TEXTS)
    with torch.no_grad():
        greedy_ll = decoder.sequence_log_likelihood(mixed, greedy)
        beam_ll = decoder.sequence_log_likelihood(mixed, beam)
    assert bool((beam_ll >= greedy_ll - 1e-4).all()), (greedy, beam, greedy_ll, beam_ll)


def test_noise_only_in_training_mode(trained):
    decoder, embeddings, _ = trained
    with torch.no_grad():
        assert decoder.loss(embeddings, TEXTS) == decoder.loss(embeddings, TEXTS)
        decoder.train()
        noisy = decoder.loss(embeddings, TEXTS) != decoder.loss(embeddings, TEXTS)
        decoder.eval()
    assert noisy


def test_save_load_round_trip(trained, tmp_path):
    decoder, embeddings, _ = trained
    decoder.save_pretrained(tmp_path / "decoder")
    loaded = YDecoder.from_pretrained(tmp_path / "decoder").eval()
    assert loaded.config == decoder.config
    assert_same_weights(decoder, loaded)
    assert loaded.decode(embeddings) == decoder.decode(embeddings)
    with pytest.raises(FileNotFoundError):
        YDecoder.from_pretrained(tmp_path)


def test_eager_attention_matches_sdpa(trained):
    decoder, embeddings, _ = trained
    eager = YDecoder(YDecoderConfig(**{**vars(TINY), "attention": "eager"}))
    eager.load_state_dict(decoder.state_dict())
    assert eager.lm.config._attn_implementation == "eager"
    decoder.eval(), eager.eval()
    with torch.no_grad():  # texts of different lengths: the padding mask matters
        assert torch.allclose(decoder.loss(embeddings, TEXTS), eager.loss(embeddings, TEXTS), atol=1e-5)
    assert eager.decode(embeddings, beam_size=2) == decoder.decode(embeddings, beam_size=2)


def test_decoding_never_writes_a_token_pair_twice():
    """A decoder whose output layer always ranks the same few tokens first loops without the n-gram guard
    and never writes a token pair twice with it (the default)."""

    class FixedRanking(nn.Module):  # logits: row r scores -r, except that EOS is last
        def __init__(self, rows: int, eos: int):
            super().__init__()
            self.scores = -torch.arange(rows, dtype=torch.float32)
            self.scores[eos] = -1e4

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            return self.scores.expand(*hidden.shape[:-1], -1)

    def pairs_repeat(rows: list[int]) -> bool:
        pairs = list(zip(rows, rows[1:]))
        return len(pairs) != len(set(pairs))

    embeddings = torch.randn(2, TINY.shared_dim, generator=torch.Generator().manual_seed(1))
    for limit, loops in ((0, True), (TINY.no_repeat_ngram_size, False)):
        decoder = YDecoder(YDecoderConfig(**{**TINY.__dict__, "no_repeat_ngram_size": limit}))
        decoder.lm.lm_head = FixedRanking(decoder.lm.config.vocab_size, decoder.eos_row)
        seen = []
        decoder.vocabulary.decode = lambda generated, seen=seen: seen.extend(generated.tolist()) or []
        decoder.decode(embeddings, max_new_tokens=8)
        assert len(seen) == 2 and all(pairs_repeat(rows) == loops for rows in seen), (limit, seen)
