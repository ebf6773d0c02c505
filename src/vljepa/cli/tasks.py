"""`vljepa classify`, `retrieve`, `ask`, `caption` and `stream`: the tasks on one video, a folder or a long video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .support import (
    InferenceModelOption,
    ModelOption,
    existing_file,
    existing_folder,
    load_inference_model,
    load_model,
    model_frames,
)


def _read(video: Path, model: Path, start: float | None = None, end: float | None = None):
    """The clip (1, T, H, W, 3) uint8 array as the model in directory `model` reads it, decoded before the
    model loads (only its config is read), so a bad video or window is reported at once."""
    from ..data.video import read_clip_array

    existing_file(video)
    return read_clip_array(video, model_frames(model), start, end)[None]


def classify(
    video: Path,
    model: InferenceModelOption,
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
    from ..tasks.requests import ClassifyRequest, ClipWindow, checked

    existing_file(video)
    names = Path(labels[1:]).read_text().splitlines() if labels.startswith("@") else labels.split(",")
    request = checked(ClassifyRequest, labels=names, top=top)
    checked(ClipWindow, start=start, end=end)
    names, top = request.labels, request.top
    frames = _read(video, model, start, end)
    vljepa = load_inference_model(model)
    prompt = vljepa.classification_prompt if query is None else (query or None)
    with vljepa.inference():
        scores = (vljepa.encode_video(frames, prompt) @ vljepa.encode_text(names).T)[0].tolist()
    for index in sorted(range(len(names)), key=lambda i: -scores[i])[:top]:
        typer.echo(f"{scores[index]:+.3f}  {names[index]}")


def retrieve(
    model: ModelOption,
    query: Annotated[str, typer.Option(help="Text to search for.")],
    videos: Annotated[Path | None, typer.Option(help="Folder of videos/images to search.")] = None,
    index: Annotated[
        Path | None, typer.Option(help="Search this index (`vljepa index build`) instead of a folder of videos.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many videos to list.")] = 5,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder.")] = None,
):
    """Text -> video search over a folder (or an index): rank the videos' predictions by similarity to the query."""
    import torch

    from ..data.clip_source import media_files
    from ..data.feature_cache import FeatureCache, default_cache_dir
    from ..data.manifest import ClipRef
    from ..tasks.embed import predict_tokens
    from ..tasks.requests import SearchRequest, checked
    from .index import format_hit, search_index

    if (videos is None) == (index is None):
        raise typer.BadParameter("give either --videos or --index")
    checked(SearchRequest, text=query)
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


def ask(
    video: Path,
    question: str,
    model: InferenceModelOption,
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
    from ..tasks.requests import AskRequest, checked
    from ..tasks.vqa import choose_options

    request = checked(AskRequest, question=question, options=options or [], beam=beam)
    options = request.options
    frames = _read(video, model)
    vljepa = load_inference_model(model)
    with vljepa.inference():
        predicted = vljepa.encode_video(frames, question)
        if not options:
            typer.echo(_decode(vljepa, predicted, beam)[0])
            return
        embedded = vljepa.encode_text(options)
    choice = choose_options(predicted, [embedded])[0]
    for option, score in zip(options, (embedded @ predicted[0]).tolist()):
        typer.echo(f"{'->' if option == options[choice] else '  '} {score:+.3f}  {option}")


def _percentile(values: list[float], q: float) -> str:
    import numpy as np

    return f"{np.percentile(values, q):.2f} s" if values else "n/a (no change of meaning)"


def _decode(vljepa, embeddings, beam: int) -> list[str]:
    try:
        return vljepa.decode(embeddings, beam_size=beam)
    except RuntimeError as error:
        raise typer.BadParameter(str(error), param_hint="--model") from error


def caption(
    video: Path,
    model: InferenceModelOption,
    start: Annotated[float | None, typer.Option(help="Clip start (seconds).")] = None,
    end: Annotated[float | None, typer.Option(help="Clip end (seconds).")] = None,
    beam: Annotated[int, typer.Option(help="Beam size.")] = 1,
):
    """Caption one clip (a whole short video, or [start, end) of a long one) through the Y-decoder."""
    from ..tasks.requests import CaptionRequest, checked

    checked(CaptionRequest, start=start, end=end, beam=beam)
    frames = _read(video, model, start, end)
    vljepa = load_inference_model(model)
    with vljepa.inference():
        typer.echo(_decode(vljepa, vljepa.encode_video(frames), beam)[0])


def stream(
    video: Annotated[
        str, typer.Argument(help="A video file; with --live also a growing file, - (a pipe on stdin) or a URL.")
    ],
    model: InferenceModelOption,
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
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Read frames as they arrive and caption when the meaning changes (online segmenter)."
        ),
    ] = False,
    queue: Annotated[
        int, typer.Option(min=1, help="--live: windows waiting for the model at most; more are dropped and counted.")
    ] = 8,
    stall: Annotated[float, typer.Option(min=0.1, help="--live: seconds without new data that end the stream.")] = 5.0,
):
    """Caption a long video, decoding once per segment of stable meaning (selective decoding)."""
    import dataclasses

    from ..tasks.requests import StreamRequest, checked
    from ..tasks.stream_captioner import StreamConfig, caption_stream

    checked(StreamRequest, hz=hz, threshold=threshold, window=window, stride=stride)
    if (threshold is not None or live) and (hz is not None or uniform):
        raise typer.BadParameter("--threshold and --live (online) exclude --hz and --uniform")
    if live and plot:
        raise typer.BadParameter("--plot draws a whole video's timeline; a live stream keeps only its open segment")
    config = StreamConfig(
        window_seconds=window,
        stride_seconds=stride,
        hz=hz or 0.35,
        segmenter="online" if threshold is not None or live else ("uniform" if uniform else "ward"),
        **({"threshold": threshold} if threshold is not None else {}),
    )
    if not live:
        existing_file(Path(video))
    vljepa = load_inference_model(model)
    if not vljepa.can_decode:
        raise typer.BadParameter(
            "this model has no Y-decoder: train one with `vljepa train-decoder` (and export again, for an export)",
            param_hint="--model",
        )

    def show(caption) -> None:
        typer.echo(f"[{caption.start:7.2f}-{caption.end:7.2f} s] {caption.text}")

    if live:
        from ..tasks.live_captioner import caption_live

        outcome = caption_live(vljepa, video, config, show, queue_size=queue, stall_seconds=stall)
        result, latencies = outcome.stream, outcome.latencies
        summary = (
            f"{len(result.captions)} decodes from {outcome.windows} windows ({outcome.dropped} dropped: the model was "
            f"behind); caption latency p50 {_percentile(latencies, 50)}, p99 {_percentile(latencies, 99)}"
        )
    else:
        result = caption_stream(vljepa, Path(video), config, on_caption=show)
        summary = (
            f"{len(result.captions)} decodes for {result.duration:.1f} s of video ({len(result.times)} windows); "
            f"{result.duration / max(sum(result.seconds.values()), 1e-9):.1f}x real time"
        )
    typer.echo(summary, err=True)
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
