"""`compile`: the decision with the probe mocked, its record in a run, and a compiled run that trains like an eager one."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model_config
from safetensors.torch import load_file
from torch._dynamo.utils import counters

from vljepa.config import StageConfig, TrainConfig, load_train_config
from vljepa.core import compilation
from vljepa.core.compilation import resolve_compilation
from vljepa.errors import ConfigError
from vljepa.train.trainer import METRICS_FILE, RUN_CONFIG_FILE, Trainer


@pytest.fixture
def probe(monkeypatch):
    """`probe(failure)` mocks the compiler probe's verdict (None: compiling works) and counts its calls."""
    calls = []

    def set_probe(failure: str | None):
        monkeypatch.setattr(compilation, "probe_compiler", lambda: calls.append(1) or failure)
        return calls

    return set_probe


def test_false_never_probes_and_auto_follows_the_probe(probe):
    calls = probe(None)
    assert resolve_compilation(False, "cpu").enabled is False and calls == []
    assert resolve_compilation("auto", "cpu").enabled and resolve_compilation(True, "cpu").enabled
    probe("torch.compile does not work on this machine (InvalidCxxCompiler: No working C++ compiler found)")
    decision = resolve_compilation("auto", "cpu")
    assert not decision.enabled and "No working C++ compiler" in decision.summary()
    assert decision.summary().startswith("compile: eager - ")


def test_true_where_compiling_fails_is_an_error_naming_the_cause(probe):
    probe("torch.compile does not work on this machine (InvalidCxxCompiler: No working C++ compiler found)")
    with pytest.raises(RuntimeError, match=r"compile=true: .*No working C\+\+ compiler.*compile=auto"):
        resolve_compilation(True, "cpu")


def test_auto_stays_eager_on_other_devices_and_under_torchrun(probe):
    calls = probe(None)
    assert not resolve_compilation("auto", "meta").enabled
    assert "2 ranks" in resolve_compilation("auto", "cpu", processes=2).reason and calls == []


def test_the_setting_is_checked_like_bf16():
    assert load_train_config(None, ["compile=AUTO"]).compile == "auto"
    assert load_train_config(None, ["compile=true"]).compile is True
    with pytest.raises(ConfigError, match=r"compile.*'sometimes'.*auto.*true or false"):
        load_train_config(None, ["compile=sometimes"])


def _config(manifest, out, cache, compile_setting) -> TrainConfig:
    return TrainConfig(
        train_manifest=str(manifest),
        out_dir=str(out),
        cache_dir=str(cache),
        bf16=False,
        compile=compile_setting,
        log_every=1,
        model=tiny_model_config(),
        stages=[
            StageConfig(name="pretrain", steps=3, batch_size=8, lr=1e-3),
            StageConfig(name="sft", steps=3, batch_size=8, lr=1e-3, mixture={"vqa": 0.5, "caption": 0.5}),
        ],
    )


def logged_losses(path) -> list[float]:
    return [entry["loss"] for entry in map(json.loads, path.read_text().splitlines()) if "loss" in entry]


def test_a_compiled_run_trains_like_an_eager_one_and_inference_stays_eager(tmp_path, clip_manifest):
    if compilation.probe_compiler() is not None:
        pytest.skip(compilation.probe_compiler())
    compiled = Trainer(_config(clip_manifest, tmp_path / "compiled", tmp_path / "cache", True), progress=False)
    initial = {name: p.detach().clone() for name, p in compiled.model.named_parameters() if p.requires_grad}
    assert compiled.measure_step_seconds(1, steps=1) > 0  # compiles on the run's model, which it then restores
    assert all(torch.equal(p, initial[name]) for name, p in compiled.model.named_parameters() if p.requires_grad)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    first = load_file(compiled.run() / "model.safetensors")
    eager_run = Trainer(_config(clip_manifest, tmp_path / "eager", tmp_path / "cache", False), progress=False)
    assert first.keys() == load_file(eager_run.run() / "model.safetensors").keys()  # the weights' names stay
    losses = [logged_losses(tmp_path / name / METRICS_FILE) for name in ("compiled", "eager")]
    assert len(losses[0]) == len(losses[1]) == 6  # the same batches; fused kernels only reorder sums
    assert all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(*losses)), losses
    saved = json.loads((tmp_path / "compiled" / RUN_CONFIG_FILE).read_text())
    assert saved["compile"] is True and saved["resolved"]["compiled"] is True
    with torch.no_grad():
        compiled.model.predict(compiled.features.gather(compiled.samples["caption"][:3], "cpu"), ["what?"] * 3)
    assert counters["stats"]["unique_graphs"] == graphs  # an inference call compiled nothing
