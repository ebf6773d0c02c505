"""`vljepa serve`: load the model (and index) once, then run the HTTP app (`vljepa.serve`) on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..serve.settings import Batching, Limits, LiveStream, ServeSettings
from .support import InferenceModelOption, existing_folder, load_inference_model


def serve_command(
    model: InferenceModelOption,
    index: Annotated[Path | None, typer.Option(help="A video index directory, for /search.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    root: Annotated[
        list[Path] | None, typer.Option(help="A folder whose videos requests may name by path (repeatable).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="VLJEPA_TOKEN", help="Require `Authorization: Bearer TOKEN` on every API request."),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload (MB).")] = Limits.max_upload_mb,
    max_duration_s: Annotated[
        float, typer.Option(help="Longest video a request may name (s).")
    ] = Limits.max_duration_s,
    max_clip_decoded_mb: Annotated[
        float, typer.Option(help="Largest whole clip decoded in memory for classify/ask/caption (MB).")
    ] = Limits.max_clip_decoded_mb,
    timeout_s: Annotated[
        float, typer.Option(help="Longest wait for the model per request (s).")
    ] = Limits.request_timeout_s,
    max_queue: Annotated[
        int, typer.Option(help="Model requests waiting at most; more are refused (503).")
    ] = Limits.max_queue,
    max_stream_jobs: Annotated[
        int, typer.Option(help="Stream jobs queued or running at most; more are refused (429).")
    ] = Limits.max_stream_jobs,
    batching: Annotated[
        bool, typer.Option(help="Gather concurrent predictions into one forward pass (--no-batching: one at a time).")
    ] = Batching.enabled,
    max_batch: Annotated[int, typer.Option(help="Predictions per forward pass at most.")] = Batching.max_batch,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a batch waits for more requests (ms).")
    ] = Batching.max_wait_ms,
    window: Annotated[
        float, typer.Option(help="Stream jobs: window length (s), the model's clip length.")
    ] = LiveStream.window_seconds,
    stride: Annotated[float, typer.Option(help="Stream jobs: window stride (s).")] = LiveStream.stride_seconds,
    threshold: Annotated[
        float, typer.Option(help="Stream jobs: cosine distance that closes a segment (live decoding).")
    ] = LiveStream.threshold,
    live: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=SOURCE: caption a live source (a growing file, a URL, a device) from the start; its captions "
            "are server-sent events at /streams/NAME/events (repeatable)."
        ),
    ] = None,
):
    """Serve a model over HTTP: an API (OpenAPI at /docs) and a web page at /."""
    existing_folder(model)
    if index is not None:
        existing_folder(index)
    settings = ServeSettings(
        roots=tuple(existing_folder(folder) for folder in root or []),
        token=token,
        limits=Limits(
            max_upload_mb=max_upload_mb,
            max_duration_s=max_duration_s,
            max_clip_decoded_mb=max_clip_decoded_mb,
            request_timeout_s=timeout_s,
            max_queue=max_queue,
            max_stream_jobs=max_stream_jobs,
        ),
        batching=Batching(enabled=batching, max_batch=max_batch, max_wait_ms=max_wait_ms),
        stream=LiveStream(window_seconds=window, stride_seconds=stride, threshold=threshold),
        live_sources=dict(_named(entry) for entry in live or []),
    )
    import uvicorn  # the server and the model load only once the settings are valid: a bad option fails at once

    from ..serve.app import create_app
    from ..serve.server import Server

    vljepa = load_inference_model(model)
    video_index = None
    if index is not None:
        from ..tasks.index import VideoIndex

        video_index = VideoIndex.open(index, model=vljepa)
    typer.echo(f"serving {model} on http://{host}:{port}/ (API docs: /docs)", err=True)
    uvicorn.run(create_app(Server(vljepa, settings, video_index, model)), host=host, port=port, log_level="warning")


def _named(entry: str) -> tuple[str, str]:
    name, separator, source = entry.partition("=")
    if not separator or not name or not source:
        raise typer.BadParameter(f"{entry!r}: expected NAME=SOURCE", param_hint="--live")
    return name, source
