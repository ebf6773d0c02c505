"""`vljepa plan`: the byte counter, the traced step against a measured one, and the plan's verdicts."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import tiny_model_config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.model.info import model_info
from vljepa.plan import profile_table
from vljepa.plan.live_bytes import LiveBytes
from vljepa.plan.measure import measure_step
from vljepa.plan.planner import Hardware, Planner, plan_recipe, predicted_step
from vljepa.plan.recipes import resolve
from vljepa.plan.report import plan_json
from vljepa.plan.trace import Lines, StepShape, TracedModel, adamw_step_bytes
from vljepa.registry import Architectures, get_model_spec

MB = 1e6


def test_live_bytes_counts_what_is_allocated_and_frees_it():
    base = torch.ones(1000)
    with LiveBytes() as counter:
        doubled = base * 2  # new: 4 kB
        doubled.add_(1)  # in place: nothing new
        _ = doubled.view(10, 100)  # a view: nothing new
        base.mul_(3)  # in place on a tensor made before the block: nothing new
        scratch = torch.empty(2000)  # new: 8 kB
        del scratch
        _ = torch.empty(500)  # 2 kB, while 4 kB is alive
    assert counter.peak == 4000 + 8000 and counter.live == 4000 + 2000


@pytest.mark.parametrize("foreach", [False, True])
def test_the_adamw_step_traced_on_fake_tensors_equals_a_real_one(foreach):
    parameters = [torch.nn.Parameter(torch.zeros(n)) for n in (300, 5000, 1200)]
    for parameter in parameters:
        parameter.grad = torch.ones_like(parameter)
    optimizer = torch.optim.AdamW(parameters, weight_decay=0.05, foreach=foreach)
    optimizer.step()
    with LiveBytes() as counter:
        optimizer.step()
    gradients = sum(p.numel() * 4 for p in parameters)
    assert adamw_step_bytes(parameters, foreach) == pytest.approx(gradients + counter.peak, rel=0.01)


def tiny_with_trained_text(frames: int):
    config = tiny_model_config()
    return dataclasses.replace(config, x_encoder=dataclasses.replace(config.x_encoder, num_frames=frames))


@pytest.mark.parametrize(
    "frames, micro_batch, batch, checkpointing",
    [(8, 16, 32, False), (4, 24, 24, False), (8, 16, 32, True)],  # several chunks; one chunk; checkpointed
)
def test_the_traced_step_is_within_15_percent_of_the_measured_one(frames, micro_batch, batch, checkpointing):
    config = tiny_with_trained_text(frames)
    shape = StepShape(frames, batch, batch, 0, 24, checkpointing, bf16=False, online_features=False)
    weights, predicted = predicted_step(TracedModel(config, Architectures()), shape, micro_batch, foreach_adamw=False)
    measured = measure_step(config, micro_batch, batch, 24, checkpointing)
    assert weights.frozen + weights.trained == measured.weights
    assert predicted == pytest.approx(measured.step_peak, rel=0.15)


def test_the_paper_models_weights_are_the_parameters_of_info():
    spec = get_model_spec("vljepa-paper")
    weights = TracedModel(spec.config, spec.architectures).weights(foreach_adamw=True)
    info = model_info("vljepa-paper")
    assert weights.frozen + weights.trained == 4 * info.total
    assert weights.trained == 4 * info.trainable and weights.adamw_moments == 2 * weights.trained


@pytest.fixture(scope="module")
def one_stage_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "recipe.yaml"
    path.write_text(
        "model: {shared_dim: 32, x_encoder: {hidden_size: 32, num_layers: 1, num_heads: 2, num_frames: 4},\n"
        "        predictor: {hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64}}\n"
        "stages: [{name: pretrain, steps: 1000, batch_size: 256, micro_batch_size: 64, mixture: {caption: 1.0}}]\n"
    )
    return path


ONE_STAGE_HARDWARE = {
    "roomy": Hardware(memory=8 * 10**9, gpus_per_node=1),
    "cramped": Hardware(memory=100 * 10**6, gpus_per_node=1),
    "two GPUs": Hardware(memory=10**9, gpus_per_node=2),
}


@pytest.fixture(scope="module")
def one_stage_plans(one_stage_yaml) -> tuple[dict[str, list], profile_table.KeptTraces]:
    """The one-stage recipe planned on each of ONE_STAGE_HARDWARE from nothing kept, and everything that took
    tracing (each shape traced once for the module: tracing is most of a plan's time)."""
    spec, configs = resolve(str(one_stage_yaml))
    traced, plans = profile_table.KeptTraces(), {}
    for name, hardware in ONE_STAGE_HARDWARE.items():
        planner = Planner(spec, hardware, bf16=False, known=traced)
        plans[name] = [planner.plan_stage(stage, config) for config in configs for stage in config.stages]
        traced.update(planner.traced)
    return plans, traced


def test_a_stage_that_cannot_fit_says_by_how_much_and_what_would(one_stage_plans):
    (roomy,), (cramped,) = one_stage_plans[0]["roomy"], one_stage_plans[0]["cramped"]
    assert roomy.chosen.micro_batch == 256 and roomy.chunks == 1 and not roomy.chosen.checkpointing
    assert roomy.configured_fits and roomy.advice == "" and roomy.gpu_hours > 0
    assert cramped.chosen is None and cramped.configured_fits is False
    assert cramped.advice.startswith("does not fit:") and "GB over at one sample" in cramped.advice


def test_plan_command_prints_json_and_refuses_bad_input(one_stage_yaml, one_stage_plans, monkeypatch):
    monkeypatch.setattr("vljepa.plan.planner.read_table", lambda: one_stage_plans[1])  # as if the package kept them
    runner = CliRunner()
    result = runner.invoke(app, ["plan", str(one_stage_yaml), "--gpu-memory", "8GB", "--fp32", "--json"])
    assert result.exit_code == 0, result.output
    (stage,) = json.loads(result.stdout)["stages"]
    assert stage == json.loads(json.dumps(plan_json(one_stage_plans[0]["roomy"], [])["stages"][0]))
    assert stage["name"] == "pretrain" and stage["chosen"]["micro_batch"] == 256
    bad = runner.invoke(app, ["plan", str(one_stage_yaml), "--gpu-memory", "lots"])
    assert bad.exit_code == 2 and "--gpu-memory: expected a size such as 1GB, 500MB or 24GiB, got 'lots'" in bad.output
    unknown = runner.invoke(app, ["plan", "vljepa-huge"])
    assert unknown.exit_code == 2 and "neither a registered model (world-tiny, vljepa-paper)" in unknown.output


def test_the_envelope_of_the_lines_gives_every_micro_batchs_peak():
    rng = np.random.default_rng(0)
    for _ in range(20):
        fixed, per_sample = rng.integers(-1000, 5000, 400).astype(float), rng.integers(-30, 60, 400).astype(float)
        lines = Lines.envelope(fixed, per_sample)
        assert len(lines.fixed) < 20
        assert all(lines.peak(m) == (fixed + m * per_sample).max() for m in range(1, 400))


def _no_tracing(monkeypatch) -> None:
    def refuse(_, shape):
        raise AssertionError(f"traced {shape}")

    monkeypatch.setattr(TracedModel, "chunks", refuse)
    monkeypatch.setattr("vljepa.plan.planner.forward_flops", refuse)


def test_a_plan_from_kept_profiles_equals_the_traced_one_and_traces_nothing(
    one_stage_yaml, one_stage_plans, tmp_path, monkeypatch
):
    plans, traced = one_stage_plans
    assert traced.profiles and traced.flops
    table = profile_table.write_table(traced, tmp_path / "profiles.json")
    _no_tracing(monkeypatch)
    spec, configs = resolve(str(one_stage_yaml))
    for name, hardware in ONE_STAGE_HARDWARE.items():
        kept = plan_recipe(spec, configs, hardware, bf16=False, known=profile_table.read_table(table))
        assert plan_json(kept, []) == plan_json(plans[name], []), name


def test_the_package_keeps_the_profiles_of_the_paper_plan(monkeypatch):
    """`vljepa plan vljepa-paper` reads its profiles (else: `python benchmarks/plan_memory.py profiles`)."""
    traced_with = json.loads(profile_table.TABLE.read_text())["traced with"]
    versions = profile_table.tracing_versions()
    for library in ("torch", "transformers"):
        if traced_with[library] != versions[library]:
            pytest.skip(f"the table was traced with {library} {traced_with[library]}, this is {versions[library]}")
    _no_tracing(monkeypatch)
    spec, configs = resolve("vljepa-paper")
    for gpus in (1, 8):
        plans = plan_recipe(spec, configs, Hardware(memory=80 * 10**9, gpus_per_node=gpus))
        assert [plan.name for plan in plans] == ["pretrain-image", "pretrain-video-8f", "pretrain-video-32f", "sft"]
