"""Hardware probes in a child process: a result comes back; a crash, a hang or an error becomes a reason, and a run
whose compile probe aborts trains eager."""

from __future__ import annotations

import os

import pytest
from conftest import tiny_model_config

from vljepa.config import StageConfig, TrainConfig
from vljepa.core import compilation, precision
from vljepa.core.child_probe import ProbeFailure, run_in_child


def test_the_result_comes_from_another_process():
    assert run_in_child("os", "getpid", timeout=60) != os.getpid()


@pytest.mark.parametrize(
    ("module", "function", "reason"),
    [
        ("os", "abort", "killed by SIGABRT"),
        ("os", "getcwdb", "exit status 1: TypeError"),
        ("sys", "exit", "exit status 0"),
    ],
)
def test_a_child_that_crashes_or_fails_is_a_probe_failure_saying_how(module, function, reason):
    # abort: SIGABRT, as from a corrupt inductor cache; getcwdb: bytes are not JSON; exit: no result at all
    with pytest.raises(ProbeFailure, match=reason):
        run_in_child(module, function, timeout=60)


def test_a_child_that_hangs_is_stopped_at_its_timeout():
    with pytest.raises(ProbeFailure, match="did not finish within 2 s"):
        run_in_child("signal", "pause", timeout=2)


@pytest.fixture
def aborting_probes(monkeypatch):
    """Both hardware probes run a child that aborts."""
    for module in (compilation, precision):
        monkeypatch.setattr(
            module, "run_in_child", lambda module, function, timeout: run_in_child("os", "abort", timeout)
        )
    compilation.probe_compiler.cache_clear()
    precision.measure_bf16_slowdown.cache_clear()
    yield
    compilation.probe_compiler.cache_clear()
    precision.measure_bf16_slowdown.cache_clear()


def test_an_aborting_compile_probe_means_eager_and_the_run_completes(aborting_probes, tmp_path, clip_manifest):
    from vljepa.train.trainer import Trainer

    decision = compilation.resolve_compilation("auto", "cpu")
    assert not decision.enabled and "SIGABRT" in decision.reason
    config = TrainConfig(
        train_manifest=str(clip_manifest),
        out_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        bf16=False,
        compile="auto",
        model=tiny_model_config(),
        stages=[StageConfig(name="pretrain", steps=2, batch_size=8, lr=1e-3)],
    )
    assert (Trainer(config, progress=False).run() / "model.safetensors").exists()


def test_an_aborting_bf16_probe_means_fp32_under_auto_and_a_warning_under_true(aborting_probes, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: ["AMX"])
    chosen = precision.resolve_precision("auto", "cpu")
    assert not chosen.bf16 and "bf16 probe failed" in chosen.reason and "SIGABRT" in chosen.reason
    assert precision.resolve_precision(True, "cpu").bf16
