"""The `vljepa` command line: world, shard, train, train-decoder, eval, classify, retrieve, index, search, ask, caption, stream, demo, pretrain-encoder, probe, list-models, info, convert-vjepa2, benchmark, serve.

Expected errors (a `VljepaError`: a bad config value, an unreadable video, a malformed manifest; or a
user-given path that is missing, a folder, or unreadable) reach the user as one line on stderr,
`error: <message>`, with exit code 2; `--debug` or VLJEPA_DEBUG=1 shows their traceback. Any other
exception is a bug and keeps its traceback. Commands check the paths they are given before loading a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from ..errors import VljepaError
from .benchmark import app as benchmark_app
from .index import index_app, search_command
from .serve import serve_command
from .shard import shard_command
from .support import existing_data, existing_file, existing_folder, load_model, quiet_loading

EXPECTED_ERRORS = (VljepaError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _one_line(error: Exception) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split())


class _Commands(TyperGroup):
    """The command group: turns expected errors into one `error:` line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as error:
            if ctx.params.get("debug") or os.environ.get("VLJEPA_DEBUG", "") not in ("", "0"):
                raise
            typer.echo(f"error: {_one_line(error)}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="VL-JEPA: predict the embedding of the answer, decode only when asked.",
)

ModelOption = Annotated[
    Path, typer.Option("--model", "-m", help="A trained model directory (e.g. runs/demo/model/final).")
]


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of expected errors too (also: VLJEPA_DEBUG=1).")
    ] = False,
):
    """VL-JEPA: predict the embedding of the answer, decode only when asked."""


def _read(video: Path, model: Path, start: float | None = None, end: float | None = None):
    """The clip (1, T, H, W, 3) as the model in directory `model` reads it, decoded before the model loads
    (only its config.json is read), so a bad video or window is reported at once."""
    from ..config import ModelConfig, read_config_json
    from ..data.video import read_clip
    from ..model.vljepa import CONFIG_FILE

    existing_file(video)
    config = read_config_json(ModelConfig, model / CONFIG_FILE, "vljepa checkpoint")
    return read_clip(video, config.x_encoder.num_frames, start, end).unsqueeze(0)


@app.command()
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


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (see src/vljepa/configs/).")
    ] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. stages.0.steps=100")] = None,
):
    """Train VL-JEPA stage by stage (resumes from <out_dir>/checkpoint if present)."""
    from ..config import load_train_config

    settings = load_train_config(config, overrides or [])
    from ..eval.suite import validation_figures
    from ..train.trainer import Trainer

    quiet_loading()
    final = Trainer(settings, score=validation_figures).run()
    typer.echo(f"model: {final}")


@app.command("train-decoder")
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


@app.command("eval")
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
    from ..data.feature_cache import FeatureCache, default_cache_dir
    from ..eval.suite import evaluate_manifest

    for path in [*manifest, *([prior] if prior else [])]:
        existing_data(path)
    vljepa = load_model(model)
    cache = FeatureCache(cache_dir or default_cache_dir(), vljepa.x_encoder, view=view)
    results = {str(m): evaluate_manifest(vljepa, m, cache, prior) for m in manifest}
    out.write_text(json.dumps(results, indent=2))
    typer.echo(json.dumps(results, indent=2))


@app.command()
def classify(
    video: Path,
    model: ModelOption,
    labels: Annotated[str, typer.Option(help="Comma-separated class names, or @file with one per line.")],
    top: int = 5,
    query: Annotated[
        str | None,
        typer.Option(help="Query for the predictor (default: the model's classification prompt; '' = caption mode)."),
    ] = None,
    start: Annotated[float | None, typer.Option(help="Clip start (seconds).")] = None,
    end: Annotated[float | None, typer.Option(help="Clip end (seconds).")] = None,
):
    """Open-vocabulary classification of one video, or of [start, end) of a long one: nearest class-name
    embedding."""
    from ..tasks.classify import rank_classes

    existing_file(video)
    names = Path(labels[1:]).read_text().splitlines() if labels.startswith("@") else labels.split(",")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise typer.BadParameter(
            f"no class names in {labels!r}: give comma-separated names or @file", param_hint="--labels"
        )
    frames = _read(video, model, start, end)
    vljepa = load_model(model)
    prompt = vljepa.config.classification_prompt if query is None else (query or None)
    with vljepa.inference():
        scores, indices = rank_classes(vljepa.encode_video(frames, prompt), vljepa.encode_text(names), top)
    for score, index in zip(scores[0].tolist(), indices[0].tolist()):
        typer.echo(f"{score:+.3f}  {names[index]}")


@app.command()
def retrieve(
    model: ModelOption,
    query: Annotated[str, typer.Option(help="Text to search for.")],
    videos: Annotated[Path | None, typer.Option(help="Folder of videos/images to search.")] = None,
    index: Annotated[
        Path | None, typer.Option(help="Search this index (`vljepa index build`) instead of a folder of videos.")
    ] = None,
    top: int = 5,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder.")] = None,
):
    """Text -> video search over a folder (or an index): rank the videos' predictions by similarity to the query."""
    import torch

    from ..data.clip_source import media_files
    from ..data.feature_cache import FeatureCache, default_cache_dir
    from ..data.manifest import ClipRef
    from ..tasks.embed import predict_tokens
    from .index import format_hit, search_index

    if (videos is None) == (index is None):
        raise typer.BadParameter("give either --videos or --index")
    if index is not None:
        for hit in search_index(index, model, query, top):
            typer.echo(format_hit(hit))
        return
    files = media_files(existing_folder(videos))
    if not files:
        raise typer.BadParameter(f"{videos}: no video or image files")
    vljepa = load_model(model)
    cache = FeatureCache(cache_dir or default_cache_dir(), vljepa.x_encoder)
    tokens = cache.tokens([ClipRef(str(f)) for f in files])
    for message in cache.failed.values():
        typer.echo(f"skipped {message}", err=True)
    clips = list(tokens)
    predicted = predict_tokens(vljepa, torch.stack([tokens[c] for c in clips]), [None] * len(clips))
    with vljepa.inference():
        scores = (predicted @ vljepa.encode_text([query]).T).squeeze(1)
    for score, row in zip(*scores.topk(min(top, len(clips)))):
        typer.echo(f"{float(score):+.3f}  {clips[int(row)].path}")


app.add_typer(index_app, name="index")
app.command("search")(search_command)


@app.command()
def ask(
    video: Path,
    question: str,
    model: ModelOption,
    options: Annotated[
        list[str] | None,
        typer.Option(
            "--options",
            "-o",
            help="Candidate answers; repeat the option. Without them the answer is decoded (needs a Y-decoder).",
        ),
    ] = None,
    beam: Annotated[int, typer.Option(help="Beam size when decoding.")] = 1,
):
    """Ask a question about a video: the nearest candidate answer (no decoding), or a decoded answer without --options."""
    from ..tasks.vqa import choose_options

    frames = _read(video, model)
    vljepa = load_model(model)
    with vljepa.inference():
        predicted = vljepa.encode_video(frames, question)
        if not options:
            typer.echo(_decode(vljepa, predicted, beam)[0])
            return
        embedded = vljepa.encode_text(options)
    choice = choose_options(predicted, [embedded])[0]
    for option, score in zip(options, (embedded @ predicted[0]).tolist()):
        typer.echo(f"{'->' if option == options[choice] else '  '} {score:+.3f}  {option}")


def _decode(vljepa, embeddings, beam: int) -> list[str]:
    try:
        return vljepa.decode(embeddings, beam_size=beam)
    except RuntimeError as error:
        raise typer.BadParameter(str(error), param_hint="--model") from error


@app.command()
def caption(
    video: Path,
    model: ModelOption,
    start: Annotated[float | None, typer.Option(help="Clip start (seconds).")] = None,
    end: Annotated[float | None, typer.Option(help="Clip end (seconds).")] = None,
    beam: Annotated[int, typer.Option(help="Beam size.")] = 1,
):
    """Caption one clip (a whole short video, or [start, end) of a long one) through the Y-decoder."""
    frames = _read(video, model, start, end)
    vljepa = load_model(model)
    with vljepa.inference():
        typer.echo(_decode(vljepa, vljepa.encode_video(frames), beam)[0])


@app.command()
def stream(
    video: Path,
    model: ModelOption,
    hz: Annotated[
        float | None,
        typer.Option(help="Adaptive (Ward) segmentation with this many decodes per second of video (default 0.35)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Online change detection instead: decode when the meaning drifts this far (cosine distance), live."
        ),
    ] = None,
    uniform: Annotated[
        bool, typer.Option("--uniform", help="Baseline: decode at fixed intervals (1 / hz) instead of adaptively.")
    ] = False,
    window: Annotated[
        float, typer.Option(help="Window length (seconds): the clip length the model was trained on.")
    ] = 2.0,
    stride: Annotated[float, typer.Option(help="Window stride (seconds).")] = 0.5,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write captions, segments and timings as JSON.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a timeline PNG (embedding change, cuts, captions).")] = None,
):
    """Caption a long video, decoding once per segment of stable meaning (selective decoding)."""
    import dataclasses

    from ..tasks.stream_captioner import StreamConfig, caption_stream

    if threshold is not None and (hz is not None or uniform):
        raise typer.BadParameter("--threshold (online) excludes --hz and --uniform")
    config = StreamConfig(
        window_seconds=window,
        stride_seconds=stride,
        hz=hz or 0.35,
        segmenter="online" if threshold is not None else ("uniform" if uniform else "ward"),
        **({"threshold": threshold} if threshold is not None else {}),
    )
    existing_file(video)
    vljepa = load_model(model)
    if vljepa.y_decoder is None:
        raise typer.BadParameter(
            "this model has no Y-decoder: train one with `vljepa train-decoder`", param_hint="--model"
        )
    result = caption_stream(
        vljepa, video, config, on_caption=lambda c: typer.echo(f"[{c.start:7.2f}-{c.end:7.2f} s] {c.text}")
    )
    duration = result.duration
    typer.echo(
        f"{len(result.captions)} decodes for {duration:.1f} s of video ({len(result.times)} windows); "
        f"{duration / max(sum(result.seconds.values()), 1e-9):.1f}x real time",
        err=True,
    )
    if json_out:
        json_out.write_text(
            json.dumps(
                {
                    "video": str(video),
                    "config": dataclasses.asdict(config),
                    "seconds": result.seconds,
                    "captions": [dataclasses.asdict(c) for c in result.captions],
                },
                indent=2,
            )
        )
    if plot:
        from ..eval.stream_plot import plot_stream_timeline

        typer.echo(f"timeline: {plot_stream_timeline(result, plot)}", err=True)


@app.command()
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


@app.command("pretrain-encoder")
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


@app.command()
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


@app.command("list-models")
def list_models_command():
    """Registered model names (use with `vljepa info`, or `vljepa.registry.get_model_config(name)` in Python)."""
    from ..registry import get_model_spec, list_models

    for name in list_models():
        typer.echo(f"{name:14s} {get_model_spec(name).description}")


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="A registered model name (see `vljepa list-models`).")],
    frames: Annotated[int | None, typer.Option(help="Input frames (default: the model's).")] = None,
    query_tokens: Annotated[int, typer.Option(help="Query length for the FLOP count (0 = caption pretraining).")] = 0,
    text_tokens: Annotated[int, typer.Option(help="Target text length for the FLOP count.")] = 32,
):
    """Parameters (trainable vs frozen) and forward FLOPs of each part, built on the meta device (no weights)."""
    from rich.console import Console

    from ..model.info import info_table, model_info

    quiet_loading()
    Console().print(info_table(model_info(model, frames, query_tokens, text_tokens)))


@app.command("convert-vjepa2")
def convert_vjepa2_command(
    checkpoint: Annotated[Path, typer.Argument(help="Upstream facebookresearch/vjepa2 checkpoint (.pt).")],
    out_dir: Annotated[Path, typer.Argument(help="Output transformers VJEPA2 directory.")],
    key: Annotated[str, typer.Option(help="Entry of the checkpoint dict holding the encoder.")] = "target_encoder",
    num_heads: Annotated[int | None, typer.Option(help="Attention heads (default: V-JEPA 2's for the width).")] = None,
    image_size: Annotated[int, typer.Option(help="Crop size the encoder was trained at.")] = 256,
    frames: Annotated[int, typer.Option(help="Frames per clip the encoder was trained at.")] = 64,
):
    """Convert an upstream V-JEPA 2 encoder checkpoint to a transformers VJEPA2 directory (for model.x_encoder.path)."""
    from ..model.convert import convert_vjepa2

    existing_file(checkpoint)
    typer.echo(f"encoder: {convert_vjepa2(checkpoint, out_dir, key, num_heads, image_size, frames)}")


app.add_typer(benchmark_app, name="benchmark")
app.command("serve")(serve_command)
app.command("shard")(shard_command)
