"""Precision from the hardware: the `bf16` decision with the CPU's capability mocked, and its record in a run."""

from __future__ import annotations

import json

import pytest
import torch

from vljepa.config import load_train_config
from vljepa.core import precision
from vljepa.core.precision import Precision, check_bf16_setting, resolve_precision
from vljepa.model import VLJepa


def printed(capsys) -> str:
    """What the console printed (to stderr), with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture
def cpu(monkeypatch):
    """Mock the CPU: `cpu(units, slowdown, capability)` sets its bf16 instructions and the probe's bf16/fp32 time ratio."""
    probes = []
    monkeypatch.setattr(precision, "_announced", set())

    def set_cpu(units: list[str], slowdown: float, capability: str = "AVX512"):
        monkeypatch.setattr(precision, "cpu_bf16_units", lambda: units)
        monkeypatch.setattr(precision, "cpu_capability", lambda: capability)
        monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: probes.append(1) or slowdown)
        return probes

    return set_cpu


def test_auto_is_fp32_on_a_cpu_without_bf16_instructions_and_skips_the_probe(cpu):
    probes = cpu([], slowdown=100.0, capability="AVX2")
    chosen = resolve_precision("auto", "cpu")
    assert chosen == Precision(False, "this CPU has no native bf16 (AVX2)")
    assert chosen.summary() == "precision: fp32 - this CPU has no native bf16 (AVX2)"
    assert not probes


@pytest.mark.parametrize("units", [["AVX512-BF16"], ["AMX"], ["AVX512-BF16", "AMX"]])
def test_auto_is_bf16_where_the_cpu_has_bf16_units_and_the_probe_confirms_them(cpu, units):
    probes = cpu(units, slowdown=0.5)
    chosen = resolve_precision("auto", torch.device("cpu"))
    assert chosen.bf16 and "natively" in chosen.reason and "2.0x as fast" in chosen.reason
    assert probes == [1]


def test_auto_is_fp32_where_the_cpu_reports_bf16_but_the_probe_finds_it_slow(cpu):
    cpu(["AVX512-BF16"], slowdown=30.0)
    chosen = resolve_precision("auto", "cpu")
    assert not chosen.bf16 and "reports AVX512-BF16 but a bf16 matmul runs 30x slower" in chosen.reason


def test_forced_bf16_where_it_is_emulated_warns_with_the_measured_slowdown(cpu, capsys):
    cpu([], slowdown=97.0, capability="AVX2")
    chosen = resolve_precision(True, "cpu")
    assert chosen.bf16
    out = printed(capsys)
    assert "warning" in out and "97x slower" in out and "AVX2" in out


def test_forced_fp32_needs_no_probe(cpu):
    probes = cpu(["AMX"], slowdown=0.3)
    assert resolve_precision(False, "cpu") == Precision(False, "bf16=false")
    assert not probes


def test_forced_bf16_where_it_is_native_does_not_warn(cpu, capsys):
    cpu(["AMX"], slowdown=0.3)
    assert resolve_precision("true", "cpu").bf16
    assert "warning" not in printed(capsys)


@pytest.mark.parametrize(
    "raw,value", [("auto", "auto"), ("AUTO", "auto"), ("false", False), ("True", True), (True, True), (False, False)]
)
def test_bf16_settings_are_read_as_auto_true_or_false(raw, value):
    assert check_bf16_setting(raw) == value


@pytest.mark.parametrize("override", ["bf16=nope", "bf16=1", "bf16=0.5"])
def test_a_bf16_value_that_is_not_a_setting_is_an_error_naming_the_key(override):
    with pytest.raises(ValueError, match="bf16="):
        load_train_config(None, [override])


def test_configs_default_to_auto_and_a_quoted_false_is_false():
    assert load_train_config(None, []).bf16 == "auto"
    assert load_train_config(None, ['bf16="false"']).bf16 is False


def test_the_probe_is_quick_and_measured_once_in_a_child():
    import time

    start = time.perf_counter()
    assert precision.bf16_matmul_slowdown() > 0
    assert time.perf_counter() - start < 1.0
    precision.measure_bf16_slowdown.cache_clear()
    first = precision.measure_bf16_slowdown()
    assert first > 0 and precision.measure_bf16_slowdown() == first


def test_a_run_prints_its_precision_once_and_records_it(cpu, tmp_path, clip_manifest, capsys):
    from conftest import tiny_model_config

    from vljepa.train.trainer import METRICS_FILE, RUN_CONFIG_FILE, Trainer

    cpu([], slowdown=50.0, capability="AVX2")
    config = load_train_config(
        None,
        [
            f"train_manifest={clip_manifest}",
            f"out_dir={tmp_path / 'run'}",
            f"cache_dir={tmp_path / 'cache'}",
            "stages.0.steps=2",
            "stages.1.steps=2",
            "stages.0.batch_size=8",
            "stages.1.batch_size=8",
            "log_every=1",
        ],
    )
    config.model = tiny_model_config()
    Trainer(config, progress=False).run()
    Trainer(config, progress=False)  # a second run in the same process does not print it again
    assert printed(capsys).count("precision: fp32 - this CPU has no native bf16 (AVX2)") == 1
    saved = json.loads((tmp_path / "run" / RUN_CONFIG_FILE).read_text())
    assert saved["bf16"] == "auto" and saved["resolved"]["precision"] == "fp32"
    assert saved["resolved"]["reason"] == "this CPU has no native bf16 (AVX2)"  # not the compile reason
    assert saved["resolved"]["compile_reason"].startswith("compile=")
    entries = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert entries and all(e["precision"] == "fp32" for e in entries)


def test_no_packaged_or_repository_config_forces_bf16():
    """A config that says `bf16: true` would run about 100x slower on a CPU without native bf16."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    configs = [*root.glob("src/vljepa/configs/**/*.yaml"), *root.glob("benchmarks/*.yaml")]
    assert len(configs) >= 6
    for path in configs:
        data = yaml.safe_load(path.read_text()) or {}
        assert data.get("bf16", "auto") != True, path  # noqa: E712 - `true` in YAML, not a truthy string


def test_a_loaded_model_infers_in_the_precision_auto_chooses(cpu, tmp_path, model_config):
    VLJepa(model_config).save_pretrained(tmp_path)
    cpu([], 40.0, "AVX2")
    assert VLJepa.from_pretrained(tmp_path).inference_precision.name == "fp32"
    assert VLJepa.from_pretrained(tmp_path, bf16=True).inference_precision.name == "bf16"
    cpu(["AVX512-BF16"], 0.5)
    model = VLJepa.from_pretrained(tmp_path)
    assert model.inference_precision.name == "bf16" and not model.training
    tokens = torch.randn(3, 32, model.x_encoder.embed_dim)
    with model.inference():
        predicted = model.predict(tokens, ["q", None, "q"])
        texts = model.encode_text(["left", "right"])
        assert torch.is_autocast_enabled("cpu")
    assert predicted.dtype == texts.dtype == torch.float32  # embeddings leave the model in float32
    with VLJepa.from_pretrained(tmp_path, bf16=False).inference() as fp32:
        reference = fp32.predict(tokens, ["q", None, "q"])
    assert torch.allclose(predicted, reference, atol=0.1) and not torch.equal(predicted, reference)


def test_inference_restores_the_training_mode_even_when_it_raises(model_config):
    model = VLJepa(model_config).train()
    with pytest.raises(RuntimeError, match="inside"):
        with model.inference():
            assert not model.training and not torch.is_grad_enabled()
            raise RuntimeError("inside")
    assert model.training and torch.is_grad_enabled()
