"""Training: overfitting one batch, exact resume, the sampler, configs and the collapse monitor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model_config
from safetensors.torch import load_file

from vljepa.config import StageConfig, TrainConfig, load_train_config, to_dict
from vljepa.model import VLJepa
from vljepa.train.samples import MixtureSampler, Sample
from vljepa.train.trainer import Trainer, prediction_spread

REPO = Path(__file__).resolve().parents[1]


def test_overfits_one_batch_to_perfect_in_batch_retrieval(model_config):
    torch.manual_seed(0)
    model_config.y_encoder.lr_multiplier = 0.0
    model = VLJepa(model_config)
    tokens = torch.randn(16, 32, model.x_encoder.embed_dim)
    captions = [
        f"a {colour} {shape}"
        for colour in ("red", "green", "blue", "yellow")
        for shape in ("circle", "square", "triangle", "star")
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(150):
        loss = model(tokens, [None] * 16, captions).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        similarity = F.normalize(model.predict(tokens), dim=-1) @ model.encode_text(captions).T
    assert similarity.argmax(1).tolist() == list(range(16))
    assert similarity.argmax(0).tolist() == list(range(16))


def _config(manifest: Path, out: Path, cache: Path) -> TrainConfig:
    return TrainConfig(
        train_manifest=str(manifest),
        val_manifest=str(manifest),
        out_dir=str(out),
        cache_dir=str(cache),
        log_every=2,
        eval_every=4,
        save_every=3,
        bf16=False,
        model=tiny_model_config(),
        stages=[
            StageConfig(name="pretrain", steps=5, batch_size=8, lr=1e-3),
            StageConfig(
                name="sft",
                steps=5,
                batch_size=8,
                lr=1e-3,
                schedule="cosine",
                warmup_steps=2,
                mixture={"vqa": 0.5, "label": 0.25, "caption": 0.25},
            ),
        ],
    )


@pytest.fixture(scope="module")
def uninterrupted(clip_manifest, tmp_path_factory) -> Path:
    """The run folder of `_config` trained without a stop (its feature cache beside it, shared by the tests)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    Trainer(_config(clip_manifest, root / "run", root / "cache"), progress=False).run()
    return root / "run"


def _same_weights(a_dir: Path, b_dir: Path) -> None:
    a, b = load_file(a_dir / "model.safetensors"), load_file(b_dir / "model.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("y_encoder.text_model.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("stop_at", [3, 5, 7])
def test_resume_after_a_stop_equals_the_uninterrupted_run(tmp_path, clip_manifest, uninterrupted, stop_at):
    """Stops mid-stage, at the stage boundary, and inside stage 2 (the text model trains at x0.05 with dropout)."""
    cache = uninterrupted.parent / "cache"
    stopped = Trainer(_config(clip_manifest, tmp_path / "b", cache), progress=False).run(stop_at_global_step=stop_at)
    assert stopped.name == "checkpoint"
    resumed = Trainer(_config(clip_manifest, tmp_path / "b", cache), progress=False).run()
    _same_weights(uninterrupted / "final", resumed)
    log_a = (uninterrupted / "metrics.jsonl").read_text().splitlines()
    log_b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [line.split('"samples_per_s"')[0] for line in log_a] == [line.split('"samples_per_s"')[0] for line in log_b]


def test_training_improves_validation(tmp_path, clip_manifest):
    config = _config(clip_manifest, tmp_path / "run", tmp_path / "cache")
    config.stages[0].steps, config.stages[1].steps = 30, 1
    trainer = Trainer(config, progress=False)
    before = trainer.validate()["val_caption_loss"]
    trainer.run()
    assert trainer.validate()["val_caption_loss"] < before - 0.3


def test_mixture_sampler_is_deterministic_and_resumable():
    samples = {
        "caption": [Sample(None, None, f"c{i}", "caption") for i in range(7)],
        "vqa": [Sample(None, "q", f"a{i}", "vqa") for i in range(5)],
        "label": [],
    }
    mixture = {"caption": 0.5, "vqa": 0.5, "label": 0.0}
    first = MixtureSampler(samples, mixture, seed=3)
    batches = [first.next_batch(4) for _ in range(6)]
    second = MixtureSampler(samples, mixture, seed=3)
    second.next_batch(4), second.next_batch(4)
    third = MixtureSampler(samples, mixture, seed=3)
    third.load_state_dict(second.state_dict())
    assert [third.next_batch(4) for _ in range(4)] == batches[2:]
    seen = [s.target for batch in batches for s in batch if s.kind == "caption"][:7]
    assert sorted(seen) == sorted(f"c{i}" for i in range(7))  # an epoch visits every sample once
    with pytest.raises(ValueError, match="unknown kinds"):
        MixtureSampler(samples, {"captions": 1.0}, seed=0)


def test_prediction_spread_detects_collapse():
    assert prediction_spread(torch.ones(8, 4)) == pytest.approx(0.0, abs=1e-6)
    assert prediction_spread(torch.eye(8)) == pytest.approx(1.0)


def test_config_overrides_and_validation(tmp_path):
    config = load_train_config(None, ["stages.1.steps=7", "model.predictor.num_layers=3", "bf16=false"])
    assert config.stages[1].steps == 7 and config.model.predictor.num_layers == 3 and config.bf16 is False
    with pytest.raises(ValueError, match="model.predictr: unknown config key"):
        load_train_config(None, ["model.predictr.num_layers=3"])
    assert to_dict(load_train_config(None, [])) == to_dict(TrainConfig())


def _one_stage(config: TrainConfig, steps: int, lr: float = 1e-3) -> TrainConfig:
    config.stages = [StageConfig(name="pretrain", steps=steps, batch_size=8)]
    config.stages[0].lr = lr  # set after the check: LR 0, refused in a config, makes a run that changes nothing
    return config


def test_init_from_starts_from_a_previous_run_and_resume_takes_precedence(tmp_path, clip_manifest):
    cache = tmp_path / "cache"
    previous = Trainer(_one_stage(_config(clip_manifest, tmp_path / "first", cache), 3), progress=False).run()
    untouched = _one_stage(_config(clip_manifest, tmp_path / "lr0", cache), 1, lr=0.0)  # AdamW at LR 0 changes nothing
    untouched.init_from = str(previous)
    expected = load_file(previous / "model.safetensors")
    for key, value in load_file(Trainer(untouched, progress=False).run() / "model.safetensors").items():
        assert torch.equal(value, expected[key]), key

    def chained(out: str) -> TrainConfig:
        config = _one_stage(_config(clip_manifest, tmp_path / out, cache), 4)
        config.init_from = str(previous)
        return config

    straight = Trainer(chained("straight"), progress=False).run()
    Trainer(chained("resumed"), progress=False).run(stop_at_global_step=2)
    resumed = Trainer(chained("resumed"), progress=False).run()  # from its checkpoint, not from init_from again
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_init_from_rejects_a_missing_directory_and_another_architecture(tmp_path, clip_manifest):
    cache = tmp_path / "cache"
    config = _one_stage(_config(clip_manifest, tmp_path / "missing", cache), 1)
    config.init_from = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="init_from=.*nowhere: no model.safetensors"):
        Trainer(config, progress=False).run()
    previous = Trainer(_one_stage(_config(clip_manifest, tmp_path / "first", cache), 1), progress=False).run()
    wider = _one_stage(_config(clip_manifest, tmp_path / "wider", cache), 1)
    wider.model.shared_dim = 48
    wider.init_from = str(previous)
    with pytest.raises(ValueError, match="(?s)init_from=.*do not fit this run's model.*size mismatch"):
        Trainer(wider, progress=False).run()


def test_micro_batches_with_gradient_checkpointing_train_like_the_full_batch(tmp_path, clip_manifest):
    """Frozen text model (no dropout anywhere): the two runs compute the same function, up to float rounding."""
    runs = []
    for name, micro_batch_size, checkpointing in [("full", None, False), ("micro", 3, True)]:
        config = _one_stage(_config(clip_manifest, tmp_path / name, tmp_path / "cache"), 3)
        config.model.y_encoder.lr_multiplier = 0.0
        config.log_every, config.stages[0].micro_batch_size = 1, micro_batch_size
        config.gradient_checkpointing = checkpointing
        final = Trainer(config, progress=False).run()
        log = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        runs.append((log, load_file(final / "model.safetensors")))
    (full_log, full), (micro_log, micro) = runs
    for a, b in zip(full_log, micro_log, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5) and b["grad_norm"] == pytest.approx(
            a["grad_norm"], rel=1e-4
        )
    for key in full:
        assert torch.allclose(full[key], micro[key], atol=1e-5), key


def test_paper_recipe_stages_chain_through_init_from():
    configs = [
        load_train_config(path) for path in sorted((REPO / "src" / "vljepa" / "configs" / "paper").glob("*.yaml"))
    ]
    assert configs[0].init_from is None
    for previous, config in zip(configs, configs[1:]):
        assert config.init_from == f"{previous.out_dir}/final"
    for config in configs:
        (stage,) = config.stages
        assert stage.micro_batch_size and stage.batch_size % stage.micro_batch_size == 0


def test_measuring_a_step_leaves_the_run_untouched(tmp_path, clip_manifest, uninterrupted):
    """The demo times steps before training: the run that follows must be the run it would have been."""
    measured = Trainer(_config(clip_manifest, tmp_path / "a", uninterrupted.parent / "cache"), progress=False)
    before = {name: tensor.clone() for name, tensor in measured.model.state_dict().items()}
    rng = torch.get_rng_state()
    assert all(measured.measure_step_seconds(index, steps=2) > 0 for index in (0, 1))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(tensor, before[name]) for name, tensor in measured.model.state_dict().items())
    _same_weights(uninterrupted / "final", measured.run())


def test_a_stage_past_its_deadline_ends_after_the_step_in_progress(tmp_path, clip_manifest, capsys):
    """The demo's budget: a stage slower than measured stops at its time, and the next stage still runs."""
    trainer = Trainer(_config(clip_manifest, tmp_path / "a", tmp_path / "cache"), progress=False)
    final = trainer.run(stage_deadline=lambda index: 0.0 if index == 0 else float("inf"))
    entries = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [stage.steps for stage in trainer.config.stages] == [1, 5]
    assert [(e["stage"], e["global_step"]) for e in entries if "val_caption_loss" in e][0] == ("pretrain", 1)
    assert entries[-1]["global_step"] == 6 and (tmp_path / "a" / "pretrain").is_dir() and final.is_dir()
    assert "pretrain ended at its time, after 1 of 5 steps" in " ".join(capsys.readouterr().err.split())


def test_a_stage_can_be_resized_before_it_starts(tmp_path, clip_manifest):
    trainer = Trainer(_config(clip_manifest, tmp_path / "a", tmp_path / "cache"), progress=False)
    seen = []

    def shorten(index: int) -> None:
        seen.append(index)
        trainer.config.stages[index].steps = 2

    trainer.run(before_stage=shorten)
    entries = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert seen == [0, 1] and [e["global_step"] for e in entries][-1] == 4
