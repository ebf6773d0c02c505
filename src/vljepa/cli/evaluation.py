"""`vljepa eval` and `vljepa probe`: score a trained model on manifests, and frozen encoders with probes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .support import ModelOption, existing_data, existing_folder, load_model, quiet_loading


def evaluate(
    model: ModelOption,
    manifest: Annotated[list[str], typer.Option(help="Manifest(s) to evaluate; repeat the option for several.")],
    prior: Annotated[str | None, typer.Option(help="Training manifest for the question-only VQA prior.")] = None,
    view: Annotated[
        str, typer.Option(help="clip, or single_frame (the middle frame repeated: a no-motion control).")
    ] = "clip",
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("eval.json"),
):
    """Evaluate on manifests: classification, retrieval, VQA per type, each beside chance."""
    from ..core.atomic import writable_folder
    from ..data.feature_cache import VIEWS, FeatureCache, default_cache_dir
    from ..eval.suite import evaluate_manifest

    if view not in VIEWS:
        raise typer.BadParameter(f"{view!r}: choose from {', '.join(VIEWS)}", param_hint="--view")
    for path in [*manifest, *([prior] if prior else [])]:
        existing_data(path)
    writable_folder(out.parent)  # before the work, not after it
    vljepa = load_model(model)
    cache = FeatureCache(cache_dir or default_cache_dir(), vljepa.x_encoder, view=view)
    results = {str(m): evaluate_manifest(vljepa, m, cache, prior) for m in manifest}
    out.write_text(json.dumps(results, indent=2))
    typer.echo(json.dumps(results, indent=2))


def probe(
    train_manifest: Annotated[
        str, typer.Option(help="Manifest whose `label` records and `probe` fields train the probes.")
    ],
    test_manifest: Annotated[str, typer.Option(help="Manifest whose `label` records and `probe` fields score them.")],
    encoder: Annotated[
        list[Path] | None, typer.Option(help="A VJEPA2 directory (e.g. <out_dir>/encoder); repeat to compare several.")
    ] = None,
    compare_random: Annotated[
        bool,
        typer.Option(help="Also probe the seeded random encoder of the same architecture (always, when no --encoder)."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random encoder and the first seed of the probes.")] = 0,
    seeds: Annotated[int, typer.Option(help="Probes fitted per task, one per seed, reported as mean and spread.")] = 3,
    max_epochs: Annotated[int, typer.Option(help="Most epochs of an attentive probe (it stops early).")] = 60,
    task: Annotated[
        list[str] | None, typer.Option(help="Only this task (repeatable), e.g. shape, colour, binding, count, action.")
    ] = None,
    frames: Annotated[int | None, typer.Option(help="Frames per clip given to the encoder (default: its own).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("probe.json"),
):
    """Attentive and linear probes on frozen encoder features (action, direction; on the built-in world also shape, colour, binding and count), beside chance."""
    import dataclasses

    from rich.console import Console

    from ..config import XEncoderConfig
    from ..data.feature_cache import default_cache_dir
    from ..encoder_pretrain.export import encoder_config
    from ..eval.probe import ProbeConfig, probe_encoder, results_table

    existing_data(train_manifest)
    existing_data(test_manifest)
    for path in encoder or []:
        existing_folder(path)
    quiet_loading()
    pretrained = {str(path): encoder_config(path, seed) for path in encoder or []}
    encoders = {}
    if compare_random or not pretrained:
        architecture = next(iter(pretrained.values()), XEncoderConfig())
        encoders[f"random (seed {seed})"] = dataclasses.replace(architecture, path=None, seed=seed)
    encoders.update(pretrained)
    if frames is not None:
        encoders = {name: dataclasses.replace(x_config, num_frames=frames) for name, x_config in encoders.items()}
    settings = ProbeConfig(max_epochs=max_epochs, num_seeds=seeds, seed=seed)
    results = {
        name: probe_encoder(
            x_config,
            str(train_manifest),
            str(test_manifest),
            str(cache_dir or default_cache_dir()),
            settings,
            tasks=task,
        )
        for name, x_config in encoders.items()
    }
    out.write_text(json.dumps(results, indent=2))
    Console().print(results_table(results))
