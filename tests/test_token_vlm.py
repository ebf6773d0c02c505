"""Token VLM baseline: overfits a few samples, ranks classes by likelihood, cached = uncached, save/load, training loop."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_same_weights, tiny_model_config

from baselines.token_vlm import TokenVLM, TokenVLMConfig
from baselines.train_token_vlm import sample_vocabulary, train_token_vlm
from vljepa.config import StageConfig, TrainConfig
from vljepa.model.causal_lm import corpus_vocabulary
from vljepa.train.samples import MixtureSampler
from vljepa.train.trainer import Trainer

QUERIES = [
    None,
    None,
    "which way does the square move?",
    "which way does the square move?",
    "what colour is it?",
    "is there a red square in the video?",
    "what is happening in the video?",
    "what is happening in the video?",
]
TARGETS = [
    "a red square slides to the left",
    "the blue circle grows",
    "left",
    "right",
    "blue",
    "yes",
    "moving left",
    "growing",
]
CLASSES = ["moving left", "growing", "moving right", "shrinking"]


@pytest.fixture(scope="module")
def trained():
    vocabulary = corpus_vocabulary([q for q in QUERIES if q] + TARGETS + CLASSES)
    model = TokenVLM(
        TokenVLMConfig(
            visual_dim=16, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocabulary=vocabulary
        )
    )
    visual = torch.randn(len(TARGETS), 6, 16, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        loss = model.loss(visual, QUERIES, TARGETS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model.eval(), visual, losses


def greedy_without_generate(model: TokenVLM, visual: torch.Tensor, query: str | None, steps: int) -> str:
    """A reference greedy loop: the whole sequence re-run at every step, no cache, one sample."""
    sequence, mask, _ = model.prefix(visual[None], [query])
    rows = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model.lm(inputs_embeds=sequence, attention_mask=mask.long(), use_cache=False).logits
            row = int(logits[0, -1].argmax())
            if row == model.vocabulary.eos:
                break
            rows.append(row)
            sequence = torch.cat([sequence, model.lm.get_input_embeddings()(torch.tensor([[row]]))], dim=1)
            mask = torch.cat([mask, torch.ones(1, 1, dtype=torch.bool)], dim=1)
    return model.vocabulary.decode(torch.tensor([rows]))[0]


def test_overfits_and_greedy_generation_reproduces_the_targets(trained):
    model, visual, losses = trained
    assert losses[-1] < 0.05 * losses[0]
    assert model.generate(visual, QUERIES) == TARGETS  # one batch: prefixes of different lengths, left-padded
    assert [model.generate(visual[i : i + 1], QUERIES[i : i + 1])[0] for i in range(len(TARGETS))] == TARGETS


def test_generation_with_kv_cache_equals_without_and_a_manual_greedy_loop(trained):
    model, visual, _ = trained
    noisy = visual + 0.8 * torch.randn(visual.shape, generator=torch.Generator().manual_seed(1))  # off the training set
    cached = model.generate(noisy, QUERIES, max_new_tokens=8)
    assert cached == model.generate(noisy, QUERIES, max_new_tokens=8, use_cache=False)
    assert cached == [greedy_without_generate(model, v, q, 8) for v, q in zip(noisy, QUERIES)]


def test_classification_by_likelihood_and_cached_scoring_equals_a_full_pass(trained):
    model, visual, _ = trained
    rows = [6, 7]
    scores = model.score(visual[rows], [QUERIES[i] for i in rows], [CLASSES, CLASSES])
    assert [CLASSES[int(s.argmax())] for s in scores] == [TARGETS[i] for i in rows]
    options = [["left", "right", "up"], ["left", "right"], ["blue", "red", "a blue square"], ["yes", "no"]]
    cached = model.score(visual[2:6], QUERIES[2:6], options)
    assert [opts[int(s.argmax())] for opts, s in zip(options, cached)] == TARGETS[2:6]
    with torch.no_grad():
        for i, (opts, values) in enumerate(zip(options, cached)):
            full = model.mean_log_likelihood(
                visual[2 + i].expand(len(opts), -1, -1), [QUERIES[2 + i]] * len(opts), opts
            )
            assert torch.allclose(values, full, atol=1e-5)


def test_save_load_round_trip(trained, tmp_path):
    model, visual, _ = trained
    model.save_pretrained(tmp_path / "token_vlm")
    loaded = TokenVLM.from_pretrained(tmp_path / "token_vlm").eval()
    assert loaded.config == model.config
    assert_same_weights(model, loaded)
    assert loaded.generate(visual, QUERIES) == TARGETS
    with pytest.raises(FileNotFoundError):
        TokenVLM.from_pretrained(tmp_path)


def test_trains_on_the_trainers_stream_and_stops_where_asked(clip_manifest, tmp_path, monkeypatch):
    stages = [
        StageConfig(name="pretrain", steps=3, batch_size=8, mixture={"caption": 1.0}),
        StageConfig(name="sft", steps=4, batch_size=8, schedule="cosine", mixture={"vqa": 0.5, "label": 0.5}),
    ]
    config = TrainConfig(
        train_manifest=str(clip_manifest),
        out_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        bf16=False,
        log_every=1,
        save_every=100,
        model=tiny_model_config(),
        stages=stages,
    )
    trainer = Trainer(config, progress=False)
    batches: list[list] = []
    next_batch = MixtureSampler.next_batch
    monkeypatch.setattr(
        MixtureSampler, "next_batch", lambda self, size: batches.append(next_batch(self, size)) or batches[-1]
    )
    trainer.run()
    vljepa_batches, batches[:] = list(batches), []
    model = TokenVLM(
        TokenVLMConfig(
            visual_dim=trainer.model.x_encoder.embed_dim,
            hidden_size=32,
            num_layers=1,
            num_heads=2,
            intermediate_size=64,
            vocabulary=sample_vocabulary(trainer.samples),
        )
    )
    stopped = []
    run = train_token_vlm(
        model,
        trainer.samples,
        trainer.features,
        config,
        stops=(2, 7),
        on_stop=lambda step, seconds: stopped.append((step, model.training, seconds > 0)),
        progress=False,
    )
    assert batches == vljepa_batches and len(batches) == 7  # the same samples in the same order
    assert stopped == [(2, False, True), (7, False, True)]
    assert [e["global_step"] for e in run["log"]] == list(range(1, 8))
