"""`vljepa demo`: the whole method end to end on the built-in world, through the same manifest path
as users' data: generate the world, train stage 1 (query-free captions) and stage 2 (SFT mixture),
evaluate on held-out clips (seen and unseen paraphrases, world prediction, a single-frame control)
and write a report with plots.
"""

from __future__ import annotations

import json
from dataclasses import asdict
import shlex
import sys
import time
from importlib import resources
from pathlib import Path

from .config import load_train_config
from .data.feature_cache import FeatureCache
from .data.world import WorldConfig, generate_world
from .encoder_pretrain import load_encoder_pretrain_config, pretrain_encoder
from .eval.report import write_report
from .eval.suite import evaluate_manifest
from .progress import console
from .train.trainer import METRICS_FILE, Trainer

DEMO_CONFIG = "world-tiny-demo.yaml"
ENCODER_PRETRAIN_CONFIG = "encoder-pretrain-world.yaml"


def packaged_config(name: str) -> Path:
    return Path(str(resources.files("vljepa") / "configs" / name))


def ensure_world(world_dir: Path, config: WorldConfig) -> None:
    """Generate the world unless this exact configuration is already there."""
    marker = world_dir / "world.json"
    if marker.is_file() and json.loads(marker.read_text()).get("config") == json.loads(json.dumps(asdict(config))):
        console.print(f"world: reusing {world_dir}")
        return
    generate_world(world_dir, config)


def run_demo(out: Path, overrides: list[str], world_config: WorldConfig | None = None,
             world_dir: Path | None = None, encoder_pretrain_overrides: list[str] | None = None) -> Path:
    """Write `<out>/report.md`, `<out>/results.json` and the trained model; `world_dir` (default
    `<out>/world`) lets several runs share one generated world. With `encoder_pretrain_overrides`
    (a list, possibly empty), the X-encoder is first pretrained with V-JEPA on the world's training
    clips (`encoder-pretrain-world.yaml` + those overrides) and VL-JEPA is trained on top of it."""
    out = Path(out)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    world_dir = Path(world_dir) if world_dir is not None else out / "world"
    ensure_world(world_dir, world_config or WorldConfig())
    timings["world"] = time.perf_counter() - started

    if encoder_pretrain_overrides is not None:
        mark = time.perf_counter()
        encoder = pretrain_encoder(load_encoder_pretrain_config(packaged_config(ENCODER_PRETRAIN_CONFIG), [
            f"data=[{world_dir / 'train.jsonl'}]", f"out_dir={out / 'encoder-pretrain'}", *encoder_pretrain_overrides]))
        overrides = [*overrides, f"model.x_encoder.path={encoder}"]
        timings["pretrain encoder"] = time.perf_counter() - mark

    mark = time.perf_counter()
    config = load_train_config(packaged_config(DEMO_CONFIG), [
        f"train_manifest={world_dir / 'train.jsonl'}", f"val_manifest={world_dir / 'val.jsonl'}",
        f"out_dir={out / 'model'}", f"cache_dir={out / 'feature_cache'}", *overrides])
    trainer = Trainer(config)
    timings["encode clips"] = time.perf_counter() - mark
    mark = time.perf_counter()
    trainer.run()
    timings["train"] = time.perf_counter() - mark

    mark = time.perf_counter()
    model, cache_dir = trainer.model, config.cache_dir
    clip_cache = FeatureCache(cache_dir, model.x_encoder)
    results = {
        "test": evaluate_manifest(model, world_dir / "test.jsonl", clip_cache, prior_manifest=world_dir / "train.jsonl"),
        "test_heldout": evaluate_manifest(model, world_dir / "test_heldout.jsonl", clip_cache),
        "world_prediction": evaluate_manifest(model, world_dir / "world_prediction_test.jsonl", clip_cache),
        "test_single_frame": evaluate_manifest(model, world_dir / "test.jsonl",
                                               FeatureCache(cache_dir, model.x_encoder, view="single_frame")),
    }
    timings["evaluate"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    results["training"] = training_summary(out / "model" / METRICS_FILE, config)
    results["timings_s"] = timings
    (out / "results.json").write_text(json.dumps(results, indent=2))
    command = "vljepa demo " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["demo"] else "run_demo"
    return write_report(out, results, timings, out / "model" / METRICS_FILE, command.strip())


def training_summary(metrics_path: Path, config) -> dict:
    """Median throughput per stage and the samples each stage saw."""
    entries = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
    summary = {}
    for stage in config.stages:
        rates = sorted(e["samples_per_s"] for e in entries if e["stage"] == stage.name)
        if rates:
            summary[f"{stage.name} samples/s (median over log windows)"] = round(rates[len(rates) // 2], 1)
        summary[f"{stage.name} samples seen"] = stage.steps * stage.batch_size
    return summary
