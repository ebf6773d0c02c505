"""The API's endpoints: classify, ask, caption, search, thumbnails, videos, stream jobs and their events, info.

Ours: uploads are multipart forms (a video file and text fields), so every POST endpoint reads form
fields and refuses a field it does not know (a misspelt `label` is an error, not silently ignored).
Labels are comma-separated (or the field repeated), options one per field, as on the command line.
Each endpoint submits all of its model work before awaiting any of it, so a clip's prediction and its
labels' embeddings can join batches with other requests.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..data.video import read_clip
from ..deploy.runtime import OnnxVLJepa
from ..model.vljepa import VLJepa
from ..tasks.classify import rank_classes
from ..tasks.requests import (
    MAX_BEAM,
    MAX_SEARCH_K,
    MAX_SEARCH_TEXT,
    AskRequest,
    CaptionRequest,
    ClassifyRequest,
    SearchRequest,
    TaskRequestError,
    checked,
)
from ..tasks.vqa import choose_options
from .jobs import JobsFull
from .limits import RequestError, check_whole_clip, probe_video
from .server import Server

router = APIRouter()
THUMBNAIL_WIDTH = 320  # pixels at most; smaller frames are sent as they are


def server_of(request: Request) -> Server:
    return request.app.state.server


ServerDep = Annotated[Server, Depends(server_of)]
VideoUpload = Annotated[UploadFile | None, File(description="A video (or image) file.")]
VideoPath = Annotated[str | None, Form(description="A video under one of the server's --root folders.")]
VideoId = Annotated[str | None, Form(description="The `video_id` of an earlier upload (e.g. a stream job's).")]
CLIP_FIELDS = ("video", "path", "video_id")


def known_fields(*names: str):
    """A dependency refusing any form field outside `names` (422 naming it)."""

    async def check(request: Request) -> None:
        unknown = sorted(set((await request.form()).keys()) - set(names))
        if unknown:
            raise RequestError(
                422, f"unknown field {', '.join(map(repr, unknown))}; this endpoint takes {', '.join(names)}"
            )

    return Depends(check)


class Scored(BaseModel):
    text: str
    score: float


class ClassifyResult(BaseModel):
    labels: list[Scored]  # best first


class AskResult(BaseModel):
    answer: str
    decoded: bool  # True: written by the Y-decoder (no options given)
    options: list[Scored] | None  # in the order given


class CaptionResult(BaseModel):
    caption: str


class SearchHit(BaseModel):
    path: str
    start: float
    end: float | None  # None: the whole file
    score: float
    video_url: str
    thumbnail_url: str


class SearchResult(BaseModel):
    query: str
    results: list[SearchHit]


class StreamJobCreated(BaseModel):
    id: str
    status: str
    video_id: str | None
    video_url: str
    duration: float
    events_url: str
    timeline_url: str


@router.post("/classify", dependencies=[known_fields(*CLIP_FIELDS, "labels", "top", "query")])
async def classify(
    server: ServerDep,
    labels: Annotated[list[str], Form(description="Class names, comma-separated (or the field repeated).")],
    video: VideoUpload = None,
    path: VideoPath = None,
    video_id: VideoId = None,
    top: Annotated[int, Form(description="How many labels to return (at least 1).")] = 5,
    query: Annotated[
        str | None, Form(description="Predictor query (default: the model's classification prompt).")
    ] = None,
) -> ClassifyResult:
    """Rank the labels by the similarity of their embeddings to the clip's prediction."""
    request = checked(ClassifyRequest, labels=[name for field in labels for name in field.split(",")], top=top)
    names, top = request.labels, request.top
    if len(names) > server.limits.max_labels:
        raise RequestError(422, f"labels: give 1 to {server.limits.max_labels} comma-separated class names")
    frames = await server.clip(await server.source(video, path, video_id))
    prompt = server.model.classification_prompt if query is None else (query or None)
    predicted = server.submit(server.worker.embed_video, frames, prompt)
    embedded = server.submit(server.worker.embed_texts, names)
    scores, indices = rank_classes((await server.wait(predicted))[None], await server.wait(embedded), top)
    return ClassifyResult(
        labels=[Scored(text=names[i], score=s) for s, i in zip(scores[0].tolist(), indices[0].tolist())]
    )


@router.post("/ask", dependencies=[known_fields(*CLIP_FIELDS, "question", "options", "beam")])
async def ask(
    server: ServerDep,
    question: Annotated[str, Form(description="The question (not blank).")],
    video: VideoUpload = None,
    path: VideoPath = None,
    video_id: VideoId = None,
    options: Annotated[list[str] | None, Form(description="Candidate answers, one per field; none: decode.")] = None,
    beam: Annotated[int, Form(description=f"Beam size when decoding (1 to {MAX_BEAM}).")] = 1,
) -> AskResult:
    """The nearest candidate answer, or without options an answer written by the Y-decoder."""
    request = checked(AskRequest, question=question, options=options or [], beam=beam)
    question, options, beam = request.question, request.options, request.beam
    if not options:
        server.require_decoder(beam)
    if len(options) > server.limits.max_labels:
        raise RequestError(422, f"options: at most {server.limits.max_labels}")
    frames = await server.clip(await server.source(video, path, video_id))
    predicted_future = server.submit(server.worker.embed_video, frames, question)
    embedded_future = server.submit(server.worker.embed_texts, options) if options else None
    predicted = (await server.wait(predicted_future))[None]
    if embedded_future is None:
        answer = await server.wait(server.submit(server.worker.call, lambda m: m.decode(predicted, beam_size=beam)))
        return AskResult(answer=answer[0], decoded=True, options=None)
    embedded = await server.wait(embedded_future)
    choice = choose_options(predicted, [embedded])[0]
    scores = (embedded @ predicted[0]).tolist()
    return AskResult(
        answer=options[choice], decoded=False, options=[Scored(text=o, score=s) for o, s in zip(options, scores)]
    )


@router.post("/caption", dependencies=[known_fields(*CLIP_FIELDS, "start", "end", "beam")])
async def caption(
    server: ServerDep,
    video: VideoUpload = None,
    path: VideoPath = None,
    video_id: VideoId = None,
    start: Annotated[float | None, Form(description="Clip start (seconds).")] = None,
    end: Annotated[float | None, Form(description="Clip end (seconds).")] = None,
    beam: Annotated[int, Form(description=f"Beam size (1 to {MAX_BEAM}).")] = 1,
) -> CaptionResult:
    """Caption a clip (a whole short video, or [start, end) of a long one) through the Y-decoder."""
    beam = checked(CaptionRequest, start=start, end=end, beam=beam).beam
    server.require_decoder(beam)
    frames = await server.clip(await server.source(video, path, video_id), start, end)
    predicted = await server.wait(server.submit(server.worker.embed_video, frames, None))
    texts = await server.wait(server.submit(server.worker.call, lambda m: m.decode(predicted[None], beam_size=beam)))
    return CaptionResult(caption=texts[0])


@router.get("/search")
async def search(
    server: ServerDep,
    q: Annotated[str, Query(description=f"Text to search for (not blank, at most {MAX_SEARCH_TEXT} characters).")],
    k: Annotated[int, Query(description=f"How many windows (1 to {MAX_SEARCH_K}).")] = 10,
) -> SearchResult:
    """The index's windows nearest to the text, with a thumbnail of each window's middle frame."""
    try:
        checked(SearchRequest, text=q, k=k)
    except TaskRequestError as error:  # the query string's names: q and k
        raise RequestError(422, str(error).replace("text:", "q:", 1)) from None
    index = server.require_index()
    hits = (await server.wait(server.submit(server.worker.call, lambda m: index.search_text(m, [q], k))))[0]
    results = []
    for hit in hits:
        path = str(Path(hit.path).resolve())
        server.remember_library_file(Path(path))
        start = hit.start or 0.0
        at = "" if hit.end is None else f"&t={round(0.5 * (start + hit.end), 3)}"  # a whole file: its middle
        results.append(
            SearchHit(
                path=path,
                start=start,
                end=hit.end,
                score=hit.score,
                video_url=f"/video?path={quote(path, safe='')}",
                thumbnail_url=f"/thumbnail?path={quote(path, safe='')}{at}",
            )
        )
    return SearchResult(query=q, results=results)


@router.get("/thumbnail", responses={200: {"content": {"image/png": {}}}}, response_class=Response)
async def thumbnail(
    server: ServerDep,
    path: Annotated[str, Query(description="A video the index returned, or one under a --root folder.")],
    t: Annotated[float | None, Query(ge=0, description="Time (seconds) of the frame (default: the middle).")] = None,
) -> Response:
    """The frame nearest time `t` as a PNG, at most 320 px wide."""
    resolved = server.library_path(path)
    facts = await run_in_threadpool(probe_video, resolved, path, server.limits)
    check_whole_clip(facts, path, server.limits)
    time = 0.5 * facts.duration if t is None else min(t, max(facts.duration - 1e-3, 0.0))
    png = await run_in_threadpool(_frame_png, resolved, time)
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _frame_png(path: Path, time: float) -> bytes:
    from PIL import Image

    frame = Image.fromarray(read_clip(path, 1, time, time + 1e-3)[0].numpy())
    if frame.width > THUMBNAIL_WIDTH:
        frame = frame.resize((THUMBNAIL_WIDTH, round(frame.height * THUMBNAIL_WIDTH / frame.width)))
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return out.getvalue()


@router.get("/video/{video_id}", response_class=FileResponse)
async def uploaded_video(server: ServerDep, video_id: str) -> FileResponse:
    """An uploaded video's bytes (Range requests supported), for the page's player."""
    return FileResponse(server.uploads.get(video_id).path)


@router.get("/video", response_class=FileResponse)
async def library_video(server: ServerDep, path: Annotated[str, Query()]) -> FileResponse:
    """A video the index returned, or one under a --root folder (Range requests supported)."""
    return FileResponse(server.library_path(path))


@router.post("/streams", status_code=202, dependencies=[known_fields(*CLIP_FIELDS)])
async def create_stream(
    server: ServerDep, video: VideoUpload = None, path: VideoPath = None, video_id: VideoId = None
) -> StreamJobCreated:
    """Start captioning a long video with selective decoding; follow it at `events_url`."""
    server.require_decoder()
    source = await server.source(video, path, video_id)
    try:
        job = server.jobs.submit(source)
    except JobsFull as error:
        raise RequestError(429, f"{error}; retry when one finishes", {"Retry-After": "5"}) from None
    return StreamJobCreated(
        id=job.id,
        status=job.status,
        video_id=source.id,
        video_url=source.url,
        duration=source.facts.duration,
        events_url=f"/streams/{job.id}/events",
        timeline_url=f"/streams/{job.id}",
    )


def _job(server: Server, job_id: str):
    job = server.jobs.get(job_id)
    if job is None:
        raise RequestError(404, f"stream job {job_id!r}: no such job")
    return job


@router.get("/streams/{job_id}")
async def stream_timeline(server: ServerDep, job_id: str) -> dict[str, Any]:
    """The job's status and its segments so far (all of them once `status` is done)."""
    return _job(server, job_id).timeline()


def known_job(server: ServerDep, job_id: str):
    """The job, looked up as a dependency: an unknown one is a 404 before the event stream opens."""
    return _job(server, job_id)


@router.get("/streams/{job_id}/events", response_class=EventSourceResponse)
async def stream_events(job: Annotated[Any, Depends(known_job)]) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: `segment` (start, end, time, text) as each caption is decoded, then `done` (the
    timeline) or `failed` (its message; not `error`, EventSource's own connection event). A late listener
    first receives every earlier event."""
    sent = 0
    while True:
        events = await job.events_after(sent)
        for event in events:
            yield ServerSentEvent(event=event.kind, data=event.data, id=str(sent))
            sent += 1
        if not events:
            return


@router.get("/info")
async def info(server: ServerDep) -> dict[str, Any]:
    """The model (its parts and sizes), its precision, the index, batching and limits."""
    return {
        "model": str(server.model_path) if server.model_path else None,
        **_model_facts(server.model),
        "index_size": None if server.index is None else len(server.index),
        "batching": vars(server.settings.batching)
        | {"batches": server.worker.batches, "items": server.worker.batched_items},
        "limits": vars(server.limits),
        "stream": vars(server.settings.stream),
    }


def _model_facts(model: VLJepa | OnnxVLJepa) -> dict[str, Any]:
    """The model's parts (parameters, or an export's graph files and bytes), frames, image size, precision."""
    if isinstance(model, OnnxVLJepa):
        sidecar = model.sidecar
        return {
            "parts": {name: {"graph": graph.file, "bytes": graph.bytes} for name, graph in sidecar.graphs.items()},
            "frames": sidecar.preprocessing.num_frames,
            "image_size": sidecar.preprocessing.image_size,
            "shared_dim": sidecar.shared_dim,
            "precision": f"ONNX export run by onnxruntime, {sidecar.weights} weights",
        }
    config = model.config
    parts = {
        "x_encoder": model.x_encoder,
        "predictor": model.predictor,
        "y_encoder": model.y_encoder,
        "y_decoder": model.y_decoder,
    }
    return {
        "parts": {
            name: None if part is None else {"parameters": sum(p.numel() for p in part.parameters())}
            for name, part in parts.items()
        },
        "frames": config.x_encoder.num_frames,
        "image_size": config.x_encoder.image_size,
        "shared_dim": config.shared_dim,
        "precision": model.inference_precision.name,
    }
