"""The `vljepa` command line: world, train, eval, classify, retrieve, ask, demo, pretrain-encoder, probe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="VL-JEPA: predict the embedding of the answer, decode only when asked.")

ModelOption = Annotated[Path, typer.Option("--model", "-m", help="A trained model directory (e.g. runs/demo/model/final).")]


def _quiet_loading() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _load_model(path: Path):
    from .model import VLJepa

    _quiet_loading()
    return VLJepa.from_pretrained(path)


def _read(video: Path, model, start: float | None = None, end: float | None = None):
    from .data.video import read_clip

    return read_clip(video, model.config.x_encoder.num_frames, start, end).unsqueeze(0)


@app.command()
def world(out: Annotated[Path, typer.Option(help="Output folder.")] = Path("world"),
          overrides: Annotated[Optional[list[str]], typer.Argument(help="WorldConfig fields, e.g. num_train=500 size=48")] = None):
    """Generate the built-in video world: mp4 clips + JSONL manifests (train/val/test, held-out paraphrases, streams)."""
    from .config import apply_overrides, from_dict, to_dict
    from .data.world import WorldConfig, generate_world

    generate_world(out, from_dict(WorldConfig, apply_overrides(to_dict(WorldConfig()), overrides or [])))
    typer.echo(f"world written to {out}")


@app.command()
def train(config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (see configs/).")] = None,
          overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. stages.0.steps=100")] = None):
    """Train VL-JEPA stage by stage (resumes from <out_dir>/checkpoint if present)."""
    from .config import load_train_config
    from .train.trainer import Trainer

    _quiet_loading()
    final = Trainer(load_train_config(config, overrides or [])).run()
    typer.echo(f"model: {final}")


@app.command("eval")
def evaluate(model: ModelOption,
             manifest: Annotated[list[Path], typer.Option(help="Manifest(s) to evaluate; repeat the option for several.")],
             prior: Annotated[Optional[Path], typer.Option(help="Training manifest for the question-only VQA prior.")] = None,
             view: Annotated[str, typer.Option(help="clip, or single_frame (the middle frame repeated: a no-motion control).")] = "clip",
             cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache folder.")] = None,
             out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("eval.json")):
    """Evaluate on manifests: classification, retrieval, VQA per type, each beside chance."""
    from .data.feature_cache import FeatureCache, default_cache_dir
    from .eval.suite import evaluate_manifest

    vljepa = _load_model(model)
    cache = FeatureCache(cache_dir or default_cache_dir(), vljepa.x_encoder, view=view)
    results = {str(m): evaluate_manifest(vljepa, m, cache, prior) for m in manifest}
    out.write_text(json.dumps(results, indent=2))
    typer.echo(json.dumps(results, indent=2))


@app.command()
def classify(video: Path, model: ModelOption,
             labels: Annotated[str, typer.Option(help="Comma-separated class names, or @file with one per line.")],
             top: int = 5,
             query: Annotated[Optional[str], typer.Option(help="Query for the predictor (default: the model's classification prompt; '' = caption mode).")] = None):
    """Open-vocabulary classification of one video: nearest class-name embedding."""
    from .tasks.classify import rank_classes

    names = (Path(labels[1:]).read_text().splitlines() if labels.startswith("@") else labels.split(","))
    names = [n.strip() for n in names if n.strip()]
    vljepa = _load_model(model)
    prompt = vljepa.config.classification_prompt if query is None else (query or None)
    predicted = vljepa.encode_video(_read(video, vljepa), prompt).detach()
    scores, indices = rank_classes(predicted, vljepa.encode_text(names).detach(), top)
    for score, index in zip(scores[0].tolist(), indices[0].tolist()):
        typer.echo(f"{score:+.3f}  {names[index]}")


@app.command()
def retrieve(model: ModelOption, query: Annotated[str, typer.Option(help="Text to search for.")],
             videos: Annotated[Path, typer.Option(help="Folder of videos/images to search.")], top: int = 5,
             cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache folder.")] = None):
    """Text -> video search over a folder: rank the videos' predictions by similarity to the query."""
    import torch

    from .data.feature_cache import FeatureCache, default_cache_dir
    from .data.manifest import ClipRef
    from .data.video import IMAGE_SUFFIXES
    from .tasks.embed import predict_tokens

    suffixes = IMAGE_SUFFIXES | {".mp4", ".webm", ".avi", ".mkv", ".mov", ".gif"}
    files = sorted(p for p in videos.rglob("*") if p.suffix.lower() in suffixes)
    if not files:
        raise typer.BadParameter(f"{videos}: no video or image files")
    vljepa = _load_model(model)
    cache = FeatureCache(cache_dir or default_cache_dir(), vljepa.x_encoder)
    tokens = cache.tokens([ClipRef(str(f.resolve())) for f in files])
    for message in cache.failed.values():
        typer.echo(f"skipped {message}", err=True)
    clips = list(tokens)
    predicted = predict_tokens(vljepa, torch.stack([tokens[c] for c in clips]), [None] * len(clips))
    scores = (predicted @ vljepa.encode_text([query]).detach().T).squeeze(1)
    for score, index in zip(*scores.topk(min(top, len(clips)))):
        typer.echo(f"{float(score):+.3f}  {clips[int(index)].path}")


@app.command()
def ask(video: Path, question: str, model: ModelOption,
        options: Annotated[list[str], typer.Option("--options", "-o", help="Candidate answers; repeat the option.")]):
    """Multiple-choice question about a video: the nearest candidate answer (no decoding)."""
    from .tasks.vqa import choose_options

    vljepa = _load_model(model)
    predicted = vljepa.encode_video(_read(video, vljepa), question).detach()
    embedded = vljepa.encode_text(options).detach()
    choice = choose_options(predicted, [embedded])[0]
    for option, score in zip(options, (embedded @ predicted[0]).tolist()):
        typer.echo(f"{'->' if option == options[choice] else '  '} {score:+.3f}  {option}")


@app.command()
def demo(out: Annotated[Path, typer.Option(help="Output folder (world, model, report).")] = Path("runs/demo"),
         pretrain_encoder: Annotated[bool, typer.Option(help="First pretrain the X-encoder with V-JEPA on the world's clips and use it instead of the seeded random one.")] = False,
         overrides: Annotated[Optional[list[str]], typer.Argument(help="Training config overrides (key=value).")] = None):
    """Generate the world, train both stages, evaluate on held-out clips and write a report (about 8 min on 2 cores)."""
    from .demo import run_demo

    _quiet_loading()
    report = run_demo(out, overrides or [], encoder_pretrain_overrides=[] if pretrain_encoder else None)
    typer.echo(f"report: {report}")


@app.command("pretrain-encoder")
def pretrain_encoder_command(
        config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (e.g. src/vljepa/configs/encoder-pretrain-world.yaml).")] = None,
        overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. steps=500 batch_size=64 masks.0.num_blocks=4")] = None):
    """Pretrain the X-encoder with V-JEPA on unlabelled video (resumes from <out_dir>/checkpoint); exports a transformers VJEPA2 directory."""
    from .encoder_pretrain import load_encoder_pretrain_config, pretrain_encoder

    _quiet_loading()
    encoder = pretrain_encoder(load_encoder_pretrain_config(config, overrides or []))
    typer.echo(f"encoder: {encoder}")


@app.command()
def probe(train_manifest: Annotated[Path, typer.Option(help="Manifest whose `label` records train the probes.")],
          test_manifest: Annotated[Path, typer.Option(help="Manifest whose `label` records score them.")],
          encoder: Annotated[Optional[list[Path]], typer.Option(help="A VJEPA2 directory (e.g. <out_dir>/encoder); repeat to compare several.")] = None,
          compare_random: Annotated[bool, typer.Option(help="Also probe the seeded random encoder of the same architecture (always, when no --encoder).")] = False,
          seed: Annotated[int, typer.Option(help="Seed of the random encoder and of the probes.")] = 0,
          epochs: Annotated[int, typer.Option(help="Probe training epochs.")] = 40,
          cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache folder.")] = None,
          out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("probe.json")):
    """Attentive and linear probes on frozen encoder features (action classes; direction of motion), beside chance."""
    import dataclasses

    from rich.console import Console

    from .config import XEncoderConfig
    from .data.feature_cache import default_cache_dir
    from .encoder_pretrain.export import encoder_config
    from .eval.probe import ProbeConfig, probe_encoder, results_table

    _quiet_loading()
    pretrained = {str(path): encoder_config(path, seed) for path in encoder or []}
    encoders = {}
    if compare_random or not pretrained:
        architecture = next(iter(pretrained.values()), XEncoderConfig())
        encoders[f"random (seed {seed})"] = dataclasses.replace(architecture, path=None, seed=seed)
    encoders.update(pretrained)
    settings = ProbeConfig(epochs=epochs, seed=seed)
    results = {name: probe_encoder(x_config, str(train_manifest), str(test_manifest), str(cache_dir or default_cache_dir()),
                                   settings) for name, x_config in encoders.items()}
    out.write_text(json.dumps(results, indent=2))
    Console().print(results_table(results))


if __name__ == "__main__":
    app()
