"""V-JEPA encoder pretraining: masks, EMA target, loss, exact resume, export, probes, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import VJEPA2Model
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.config import XEncoderConfig
from vljepa.data.world import WorldConfig, clip_scene, generate_world
from vljepa.encoder_pretrain import (
    EncoderPretrainConfig,
    EncoderPretrainer,
    MaskConfig,
    PretrainPredictorConfig,
    VJepaObjective,
    encoder_config,
    load_encoder_pretrain_config,
    save_encoder,
)
from vljepa.encoder_pretrain.data import pretraining_clips, render_world_clips
from vljepa.encoder_pretrain.masking import block_size, sample_masks, step_masks, target_mask, token_grid
from vljepa.encoder_pretrain.objective import content_weights, ema_momentum, tubelet_spread
from vljepa.eval.probe import LabelledTokens, ProbeConfig, binding_summary, run_task
from vljepa.model.x_encoder import XEncoder, preprocess_clip

REPO = Path(__file__).resolve().parents[1]
TINY_X = XEncoderConfig(hidden_size=64, num_layers=2, num_heads=2, image_size=32, num_frames=8)
TINY_PREDICTOR = PretrainPredictorConfig(hidden_size=32, num_layers=1, num_heads=2)


def tiny_config(**fields) -> EncoderPretrainConfig:
    return EncoderPretrainConfig(
        x_encoder=TINY_X,
        predictor=TINY_PREDICTOR,
        batch_size=4,
        steps=6,
        warmup_steps=2,
        lr=1e-3,
        log_every=1,
        save_every=100,
        **fields,
    )


def union_of_blocks(mask: np.ndarray, height: int, width: int) -> bool:
    """True when every set cell lies in an all-set height x width window: a union of such blocks."""
    covered = np.zeros_like(mask)
    for y in range(mask.shape[0] - height + 1):
        for x in range(mask.shape[1] - width + 1):
            if mask[y : y + height, x : x + width].all():
                covered[y : y + height, x : x + width] = True
    return bool((covered == mask).all())


# --- masks ---------------------------------------------------------------------------------------


def test_masks_are_unions_of_large_blocks_spanning_time():
    grid = (4, 8, 8)
    spec = MaskConfig(num_blocks=3, spatial_scale=(0.2, 0.2))
    rng = np.random.default_rng(0)
    for _ in range(20):
        size = block_size(spec, grid, rng)
        assert size[0] == 4 and size[1] * size[2] >= 9  # whole clip in time, ~20% of the frame in space
        mask = target_mask(spec.num_blocks, size, grid, rng)
        assert (mask == mask[:1]).all()  # the same region at every time step
        assert union_of_blocks(mask[0], size[1], size[2]) and not mask.all()


def test_context_and_target_are_disjoint_with_equal_counts_and_expected_ratios():
    grid = (4, 16, 16)
    one_block = sample_masks(
        MaskConfig(num_blocks=1, spatial_scale=(0.5, 0.5), aspect_ratio=(1.0, 1.0)), grid, 8, np.random.default_rng(0)
    )
    assert one_block.target.shape == (8, 4 * 11 * 11) and one_block.context.shape == (8, 4 * (256 - 121))
    for masks in step_masks(EncoderPretrainConfig().masks, grid, 16, seed=0, step=3):
        assert masks.context.dtype == torch.long and masks.context.shape[0] == masks.target.shape[0] == 16
        for context, target in zip(masks.context.tolist(), masks.target.tolist()):
            assert context == sorted(set(context)) and target == sorted(set(target))
            assert not set(context) & set(target)
    short, long = (m.target.shape[1] / (4 * 256) for m in step_masks(EncoderPretrainConfig().masks, grid, 16, 0, 3))
    assert 0.35 < short < 0.85 and 0.5 < long < 0.95 and short < long
    again = step_masks(EncoderPretrainConfig().masks, grid, 16, seed=0, step=3)
    assert torch.equal(again[0].target, step_masks(EncoderPretrainConfig().masks, grid, 16, 0, 3)[0].target)


def test_a_block_never_hides_the_whole_tiny_grid():
    grid = token_grid(XEncoderConfig())  # (4, 4, 4)
    spec = MaskConfig(num_blocks=2, spatial_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0))
    for step in range(10):
        masks = sample_masks(spec, grid, 4, np.random.default_rng(step))
        assert masks.context.shape[1] > 0 and masks.target.shape[1] > 0


# --- objective -----------------------------------------------------------------------------------


def test_student_starts_from_the_seeded_encoder_and_the_target_follows_the_ema_rule():
    torch.manual_seed(0)
    config = tiny_config()
    objective = VJepaObjective(config)
    reference = XEncoder(TINY_X).vjepa2.encoder.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in objective.student.encoder.state_dict().items())
    video = torch.randn(4, 8, 3, 32, 32)
    masks = step_masks(config.masks, token_grid(TINY_X), 4, seed=0, step=0)
    optimizer = torch.optim.AdamW(objective.student.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in objective.target_encoder.state_dict().items()}
    objective(video, masks).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in objective.target_encoder.parameters())
    optimizer.step()
    objective.update_target(0.9)
    student = objective.student.encoder.state_dict()
    for name, value in objective.target_encoder.state_dict().items():
        torch.testing.assert_close(value, 0.9 * before[name] + 0.1 * student[name], rtol=0, atol=1e-6)
    assert ema_momentum(0, 100, (0.996, 1.0)) == 0.996 and ema_momentum(100, 100, (0.996, 1.0)) == 1.0


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    config = tiny_config()
    objective = VJepaObjective(config)
    smooth = F.interpolate(torch.randn(4, 3, 2, 2), size=32, mode="bilinear")  # masked tokens are predictable
    video = smooth.unsqueeze(1).expand(-1, 8, -1, -1, -1)
    masks = step_masks(config.masks, token_grid(TINY_X), 4, seed=0, step=0)
    optimizer = torch.optim.AdamW(objective.student.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = objective(video, masks)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        objective.update_target(0.99)
        losses.append(out.loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0]
    assert out.target_std > 0.05 and len(out.mask_losses) == 2


def test_content_weights_follow_the_encoders_token_order_and_favour_tokens_with_content():
    encoder = XEncoder(TINY_X).vjepa2.encoder
    video = torch.zeros(2, 8, 3, 32, 32)
    video[:, 2:4, :, 16:24, 24:32] = torch.rand(2, 2, 3, 8, 8)  # time step 1, row 2, column 3 of the 4 x 4 grid
    spread = tubelet_spread(video, TINY_X.patch_size, TINY_X.tubelet_size)
    changed = (encoder.embeddings(video) - encoder.embeddings(torch.zeros_like(video))).abs().sum(-1) > 0
    assert spread.shape == changed.shape == (2, 64)  # 4 time steps x 4 x 4
    assert torch.equal(spread > 0, changed) and changed[0].nonzero().flatten().tolist() == [1 * 16 + 2 * 4 + 3]
    weights = content_weights(spread, 0.9)
    torch.testing.assert_close(weights.mean(), torch.tensor(1.0))
    assert weights[0, 27] > 10 * weights[0, 0] and torch.allclose(weights[0, 0], torch.tensor(0.1))
    config = tiny_config(content_weighting=0.9)
    out = VJepaObjective(config)(video, step_masks(config.masks, token_grid(TINY_X), 2, seed=0, step=0))
    assert torch.isfinite(out.loss) and len(out.mask_losses) == len(config.masks)


# --- trainer: exact resume, export ---------------------------------------------------------------


def test_resume_continues_bit_exactly_and_the_export_loads_in_transformers(tmp_path, clip_manifest):
    straight = EncoderPretrainer(tiny_config(data=[str(clip_manifest)], out_dir=str(tmp_path / "a")), progress=False)
    exported = straight.run()
    first = EncoderPretrainer(tiny_config(data=[str(clip_manifest)], out_dir=str(tmp_path / "b")), progress=False)
    assert first.run(stop_at_step=3) == tmp_path / "b" / "checkpoint"
    resumed = EncoderPretrainer(tiny_config(data=[str(clip_manifest)], out_dir=str(tmp_path / "b")), progress=False)
    resumed.run()
    for name, value in straight.objective.state_dict().items():
        assert torch.equal(value, resumed.objective.state_dict()[name]), name
    logs = [
        [
            {k: v for k, v in json.loads(line).items() if k != "clips_per_s"}
            for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        ]
        for run in ("a", "b")
    ]
    assert logs[0] == logs[1] and [e["global_step"] for e in logs[0]] == list(range(1, 7))
    assert (tmp_path / "a" / "curves.png").is_file()

    loaded = VJEPA2Model.from_pretrained(exported)
    video = straight.clips[:2].float()
    with torch.no_grad():
        expected = straight.objective.target_encoder(pixel_values_videos=video).last_hidden_state
    assert torch.equal(loaded.get_vision_features(video), expected)
    assert torch.equal(XEncoder(encoder_config(exported))(video), expected)
    weights = load_file(str(exported / "model.safetensors"))
    assert any(k.startswith("predictor.") for k in weights)
    assert encoder_config(exported).num_frames == 8 and encoder_config(exported).hidden_size == 64


def test_save_encoder_writes_the_ema_encoder_not_the_student(tmp_path):
    torch.manual_seed(0)
    objective = VJepaObjective(tiny_config())
    with torch.no_grad():
        for parameter in objective.student.encoder.parameters():
            parameter.add_(1.0)
    save_encoder(objective, tmp_path / "enc", tiny_config())
    loaded = VJEPA2Model.from_pretrained(tmp_path / "enc").encoder.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in objective.target_encoder.state_dict().items())


# --- data ----------------------------------------------------------------------------------------


def test_world_clips_are_rendered_in_memory_from_their_own_seed():
    clips = render_world_clips(3, 5, TINY_X, progress=False)
    assert clips.shape == (3, 8, 3, 32, 32) and clips.dtype == torch.float16
    scene_frames = clip_scene(WorldConfig(seed=5), "train", 2)[1]
    kept = np.linspace(0, len(scene_frames) - 1, 8).round().astype(int)
    expected = preprocess_clip(torch.from_numpy(scene_frames[kept]), TINY_X).half()
    assert torch.equal(clips[2], expected)
    assert not torch.equal(render_world_clips(3, 0, TINY_X, progress=False), clips)  # another world
    assert pretraining_clips([], 2, 5, TINY_X, progress=False).shape[0] == 2
    with pytest.raises(ValueError, match="world_clips"):
        tiny_config(data=[])


# --- probes --------------------------------------------------------------------------------------


def test_probes_learn_a_separable_task():
    generator = torch.Generator().manual_seed(0)
    prototypes = torch.randn(3, 1, 16, generator=generator)

    def split(n: int) -> LabelledTokens:
        labels = torch.arange(n) % 3
        return LabelledTokens(prototypes[labels] + 0.3 * torch.randn(n, 8, 16, generator=generator), labels)

    results = run_task(split(60), split(30), 3, ProbeConfig(max_epochs=30, batch_size=16, lr=3e-3, num_seeds=2))
    assert set(results) == {"attentive", "linear"}
    for scores in results.values():
        assert scores["accuracy"] > 0.9 and scores["chance"] == pytest.approx(1 / 3)
        assert len(scores["per_seed"]) == 2 and scores["std"] >= 0


def test_binding_sums_up_the_per_form_colour_tasks():
    def task(per_seed, num_test):
        return {"per_seed": per_seed, "num_test": num_test, "num_train": 10, "train_accuracy": 1.0}

    by_task = {
        "colour of the circle": {**task([1.0, 0.5], 30), "chance": 0.2, "num_classes": 6},
        "colour of the square": {**task([0.0, 0.5], 10), "chance": 0.4, "num_classes": 5},
        "shape": {**task([0.9, 0.9], 50), "chance": 0.3, "num_classes": 4},
    }
    binding = binding_summary(by_task)
    assert binding["per_seed"] == pytest.approx([0.75, 0.5]) and binding["accuracy"] == pytest.approx(0.625)
    assert binding["chance"] == pytest.approx(0.25) and binding["num_test"] == 40
    assert binding_summary({"shape": by_task["shape"]}) is None


# --- config and CLI ------------------------------------------------------------------------------


def test_packaged_yaml_and_overrides():
    config = load_encoder_pretrain_config(
        REPO / "src/vljepa/configs/encoder-pretrain-world.yaml",
        ["masks.0.num_blocks=6", "ema=[0.99, 1.0]", "x_encoder.num_layers=2"],
    )
    assert config.masks[0].num_blocks == 6 and config.masks[1].spatial_scale == (0.4, 0.4)
    assert config.ema == (0.99, 1.0) and config.x_encoder.num_layers == 2 and config.x_encoder.hidden_size == 192
    with pytest.raises(ValueError, match="masks.0.blocks: unknown config key"):
        load_encoder_pretrain_config(None, ["masks.0.blocks=4"])


def test_cli_pretrains_on_a_tiny_world_and_probes(tmp_path):
    world = generate_world(
        tmp_path / "world",
        WorldConfig(num_train=24, num_val=4, num_test=8, num_streams=0, size=32, num_frames=8),
        progress=False,
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "pretrain-encoder",
            "-c",
            str(REPO / "src/vljepa/configs/encoder-pretrain-world.yaml"),
            f"data=[{world / 'train.jsonl'}]",
            f"out_dir={tmp_path / 'run'}",
            "steps=3",
            "batch_size=8",
            "log_every=1",
            "x_encoder.num_layers=1",
            "predictor.num_layers=1",
        ],
    )
    assert result.exit_code == 0, result.output
    encoder = tmp_path / "run" / "encoder"
    assert (encoder / "config.json").is_file() and (encoder / "model.safetensors").is_file()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3
    result = runner.invoke(
        app,
        [
            "probe",
            "--train-manifest",
            str(world / "train.jsonl"),
            "--test-manifest",
            str(world / "test.jsonl"),
            "--encoder",
            str(encoder),
            "--compare-random",
            "--max-epochs",
            "2",
            "--seeds",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "p.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "p.json").read_text())
    assert list(results) == ["random (seed 0)", str(encoder)]
    probed = set(results[str(encoder)]["attentive"])
    assert {"action", "direction", "shape", "count", "binding"} <= probed, probed
    assert "attentive" in result.output and "chance" in result.output
