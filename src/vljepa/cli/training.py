"""`vljepa world`, `train`, `train-decoder`, `demo` and `pretrain-encoder`: make data and train the model's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .support import ModelOption, existing_data, existing_folder, quiet_loading


def world(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("world"),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="WorldConfig fields, e.g. num_train=500 size=48")
    ] = None,
):
    """Generate the built-in video world: mp4 clips + JSONL manifests (train/val/test, held-out paraphrases, streams)."""
    from ..data.world import WorldConfig, generate_world

    generate_world(out, WorldConfig.from_overrides(overrides or []))
    typer.echo(f"world written to {out}")


def train(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (see src/vljepa/configs/).")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. stages.0.steps=100")] = None,
):
    """Train VL-JEPA stage by stage (resumes from <out_dir>/checkpoint if present)."""
    from ..config import load_train_config

    settings = load_train_config(config, overrides or [])
    from ..eval.model_card import write_card
    from ..eval.report import plot_validation
    from ..eval.suite import validation_figures
    from ..train.trainer import Trainer

    quiet_loading()
    final = Trainer(settings, score=validation_figures, write_card=write_card, draw_figures=plot_validation).run()
    typer.echo(f"model: {final}")


def train_decoder_command(
    model: ModelOption,
    manifest: Annotated[
        str,
        typer.Option(
            help="Training manifest: its captions, answers and class names are the corpus; its clips give predictor outputs."
        ),
    ],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML with DecoderTrainConfig fields.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. inversion_steps=500 decoder.hidden_size=256")
    ] = None,
):
    """Train the Y-decoder of a trained model (invert its Y-encoder, adapt to its predictor); saved into MODEL/y_decoder."""
    from ..config import load_config
    from ..train.decoder import DecoderTrainConfig, train_decoder

    existing_folder(model)
    existing_data(manifest)
    quiet_loading()
    settings = load_config(
        DecoderTrainConfig, config, [f"model={model}", f"train_manifest={manifest}", *(overrides or [])]
    )
    typer.echo(f"decoder: {train_decoder(settings)}")


def demo(
    out: Annotated[Path, typer.Option(help="Output folder (world, model, report).")] = Path("runs/demo"),
    pretrain_encoder: Annotated[
        bool,
        typer.Option(
            help="First pretrain the X-encoder with V-JEPA on the world's clips and use it instead of the seeded random one."
        ),
    ] = False,
    world_option: Annotated[
        list[str] | None,
        typer.Option(help="A field of the world, as in `vljepa world` (repeatable), e.g. num_train=2000."),
    ] = None,
    minutes: Annotated[
        float,
        typer.Option(
            help="Wall-clock budget of the whole demo: the recipe's steps are scaled to this machine's measured speed to fit (0: the whole recipe, however long)."
        ),
    ] = 10.0,
    overrides: Annotated[list[str] | None, typer.Argument(help="Training config overrides (key=value).")] = None,
):
    """Generate the world, train both stages and the Y-decoder, evaluate on held-out clips, caption a stream, write a report, all within --minutes."""
    import shlex
    import sys
    import time

    started = time.perf_counter()  # the budget counts the imports below too

    from ..data.world import WorldConfig
    from ..demo.run import run_demo

    quiet_loading()
    arguments = sys.argv[1:]
    command = "vljepa " + " ".join(shlex.quote(a) for a in arguments) if "demo" in arguments[:2] else "vljepa demo"
    report = run_demo(
        out,
        overrides or [],
        WorldConfig.from_overrides(world_option or []),
        encoder_pretrain_overrides=[] if pretrain_encoder else None,
        minutes=minutes or None,
        command=command.strip(),
        started=started,
    )
    typer.echo(f"report: {report}")


def pretrain_encoder_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML config (e.g. src/vljepa/configs/encoder-pretrain-world.yaml)."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. steps=500 batch_size=64 masks.0.num_blocks=4")
    ] = None,
):
    """Pretrain the X-encoder with V-JEPA on unlabelled video (resumes from <out_dir>/checkpoint); exports a transformers VJEPA2 directory."""
    from ..encoder_pretrain import load_encoder_pretrain_config, pretrain_encoder

    quiet_loading()
    encoder = pretrain_encoder(load_encoder_pretrain_config(config, overrides or []))
    typer.echo(f"encoder: {encoder}")
