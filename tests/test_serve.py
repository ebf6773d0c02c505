"""`vljepa serve`: every endpoint against the real app and the tiny trained model, and every documented refusal."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model_config
from fastapi.testclient import TestClient
from PIL import Image

from vljepa.data.video import read_clip
from vljepa.model import VLJepa
from vljepa.serve.app import create_app
from vljepa.serve.server import Server
from vljepa.serve.settings import Limits, LiveStream, ServeSettings
from vljepa.tasks.index import VideoIndex
from vljepa.tasks.stream_captioner import StreamConfig, caption_stream

LABELS = "moving left,moving right,growing"


@pytest.fixture(scope="module")
def model(model_with_decoder) -> VLJepa:
    return VLJepa.from_pretrained(model_with_decoder[0])


@pytest.fixture(scope="module")
def clips(clip_manifest) -> Path:
    return clip_manifest.parent / "clips"


@contextmanager
def serving(model: VLJepa, roots=(), index=None, **settings):
    limits = settings.pop("limits", {})
    server = Server(model, ServeSettings(roots=tuple(roots), limits=Limits(**limits), **settings), index)
    with TestClient(create_app(server)) as client:
        yield client, server


@pytest.fixture(scope="module")
def library(model, clips, stream_video, tmp_path_factory) -> VideoIndex:
    """The stream's 2-s windows and two whole clips, outside the server's roots."""
    entries = [(str(stream_video), float(start), float(start + 2)) for start in (0, 1, 2)]
    entries += [str(clips / "08.mp4"), str(clips / "09.mp4")]
    return VideoIndex.build(model, entries, tmp_path_factory.mktemp("index") / "index", progress=False)


@pytest.fixture(scope="module")
def api(model, clip_manifest, library):
    limits = {"max_upload_mb": 0.5, "max_duration_s": 30}
    with serving(model, roots=[clip_manifest.parent], index=library, limits=limits) as served:
        yield served


def upload(path: Path, name: str | None = None) -> dict:
    return {"video": (name or path.name, path.read_bytes(), "application/octet-stream")}


@contextmanager
def blocked(server: Server, full: bool = False):
    """The model thread busy until the block ends (`full`: and its queue full too, with a queue of one)."""
    gate = threading.Event()
    while server.worker.queued:  # an earlier block's work still waiting
        time.sleep(0.001)
    server.worker.call(lambda model: gate.wait())
    while server.worker.queued:  # until the model thread has taken it
        time.sleep(0.001)
    if full:
        server.worker.call(lambda model: None)
    try:
        yield
    finally:
        gate.set()


def test_classify_ranks_the_labels_as_the_model_does(api, model, clips):
    client, _ = api
    frames = read_clip(clips / "03.mp4", model.config.x_encoder.num_frames).unsqueeze(0)
    with model.inference():
        labels, predicted = (
            model.encode_text(LABELS.split(",")),
            model.encode_video(frames, model.config.classification_prompt),
        )
    expected = (labels @ predicted[0]).tolist()
    response = client.post("/classify", files=upload(clips / "03.mp4"), data={"labels": LABELS, "top": "2"})
    assert response.status_code == 200, response.text
    ranked = sorted(zip(LABELS.split(","), expected), key=lambda pair: -pair[1])[:2]
    assert [r["text"] for r in response.json()["labels"]] == [name for name, _ in ranked]
    assert [r["score"] for r in response.json()["labels"]] == pytest.approx([score for _, score in ranked], abs=1e-5)
    by_path = client.post("/classify", data={"labels": LABELS, "top": "2", "path": "clips/03.mp4"})
    assert by_path.status_code == 200 and by_path.json() == response.json()


def test_ask_chooses_an_option_or_decodes_an_answer(api, model, clips):
    client, _ = api
    question = "which way does the square move?"
    frames = read_clip(clips / "04.mp4", model.config.x_encoder.num_frames).unsqueeze(0)
    with model.inference():
        predicted, options = model.encode_video(frames, question), model.encode_text(["left", "right"])
    scores = (options @ predicted[0]).tolist()
    decoded = model.decode(predicted)[0]
    chosen = client.post(
        "/ask", files=upload(clips / "04.mp4"), data={"question": question, "options": ["left", "right"]}
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["answer"] == ["left", "right"][int(np.argmax(scores))] and not chosen.json()["decoded"]
    assert [o["score"] for o in chosen.json()["options"]] == pytest.approx(scores, abs=1e-5)
    written = client.post("/ask", data={"question": question, "path": str(clips / "04.mp4")})
    assert written.status_code == 200, written.text
    assert written.json() == {"answer": decoded, "decoded": True, "options": None}


def test_caption_is_the_decoded_prediction(api, model, clips):
    client, _ = api
    frames = read_clip(clips / "05.mp4", model.config.x_encoder.num_frames, 0.25, 0.75).unsqueeze(0)
    with model.inference():
        expected = model.decode(model.encode_video(frames))[0]
    response = client.post("/caption", files=upload(clips / "05.mp4"), data={"start": "0.25", "end": "0.75"})
    assert response.status_code == 200, response.text
    assert response.json() == {"caption": expected}


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_a_stream_job_sends_each_caption_then_its_timeline(api, model, stream_video):
    client, server = api
    created = client.post("/streams", files=upload(stream_video))
    assert created.status_code == 202, created.text
    job = created.json()
    with client.stream("GET", job["events_url"]) as events:
        received = sse_events("".join(events.iter_text()))
    live = server.settings.stream
    config = StreamConfig(live.window_seconds, live.stride_seconds, segmenter="online", threshold=live.threshold)
    expected = [dataclasses.asdict(c) for c in caption_stream(model, stream_video, config).captions]
    assert [kind for kind, _ in received] == ["segment"] * len(expected) + ["done"]
    assert [data for _, data in received[:-1]] == expected
    timeline = client.get(job["timeline_url"]).json()
    assert timeline == received[-1][1] and timeline["status"] == "done" and timeline["segments"] == expected
    assert timeline["segments"][0]["start"] == 0.0 and timeline["segments"][-1]["end"] == pytest.approx(job["duration"])
    video = client.get(job["video_url"], headers={"Range": "bytes=0-99"})
    assert video.status_code == 206 and video.content == stream_video.read_bytes()[:100]
    asked = client.post("/ask", data={"video_id": job["video_id"], "question": "what happens?", "options": ["a", "b"]})
    assert asked.status_code == 200, asked.text


def test_a_live_source_is_captioned_as_it_arrives_and_followed_over_sse(model, stream_video, tmp_path):
    from test_live import started, writer

    target = tmp_path / "live.ts"
    child = writer(stream_video, str(target))
    live = LiveStream(window_seconds=1.0, stride_seconds=0.5, stall_seconds=1.0)
    with serving(model, live_sources={"cam": str(started(target, child))}, stream=live) as (client, _):
        with client.stream("GET", "/streams/cam/events") as events:
            received = sse_events("".join(events.iter_text()))
        timeline = client.get("/streams/cam").json()
    child.wait(timeout=30)
    assert [kind for kind, _ in received] == ["segment"] * (len(received) - 1) + ["done"] and len(received) > 1
    assert timeline == received[-1][1] and timeline["live"] is True
    assert timeline["segments"] == [data for _, data in received[:-1]]


def test_info_health_docs_page_and_thumbnails(api, model, clips):
    client, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["precision"] == model.inference_precision.name and info["index_size"] == 5
    assert info["parts"]["y_decoder"]["parameters"] == sum(p.numel() for p in model.y_decoder.parameters())
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/classify", "/ask", "/caption", "/search", "/thumbnail", "/streams", "/streams/{job_id}/events"} <= set(
        paths
    )
    assert client.get("/docs").status_code == 200
    assert "<title>vljepa</title>" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    png = client.get("/thumbnail", params={"path": "clips/06.mp4", "t": "0.5"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    expected = read_clip(clips / "06.mp4", 1, 0.5, 0.501)[0].numpy()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB")), expected)


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert all(word in message for word in words), message


def test_bad_uploads_are_refused_by_content(api, clips, tmp_path):
    client, _ = api
    for size in (600_000, 2_000_000):  # caught when stored; caught while the body is read
        big = {"video": ("big.mp4", b"\0" * size)}
        assert_refused(client.post("/classify", files=big, data={"labels": LABELS}), 413, "0.5 MB")
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video at all\n" * 50)
    assert_refused(client.post("/classify", files=upload(not_video), data={"labels": LABELS}), 415, "notes.mp4")
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes((clips / "07.mp4").read_bytes()[: (clips / "07.mp4").stat().st_size // 2])
    assert_refused(client.post("/classify", files=upload(truncated), data={"labels": LABELS}), 415, "cut.mp4")
    assert_refused(client.post("/caption", files=upload(clips / "07.mp4"), data={"start": "5"}), 422, "duration")


def test_bad_fields_are_named(api, clips):
    client, _ = api
    assert_refused(client.post("/classify", files=upload(clips / "01.mp4")), 422, "labels")
    assert_refused(client.post("/classify", files=upload(clips / "01.mp4"), data={"label": "a,b"}), 422, "'label'")
    assert_refused(client.post("/classify", files=upload(clips / "01.mp4"), data={"labels": " , "}), 422, "labels")
    assert_refused(client.post("/classify", data={"labels": LABELS}), 422, "name one video")
    both = client.post("/classify", files=upload(clips / "01.mp4"), data={"labels": LABELS, "path": "clips/01.mp4"})
    assert_refused(both, 422, "video, path")
    assert_refused(client.post("/ask", data={"path": "clips/01.mp4", "question": ""}), 422, "question")
    assert_refused(client.post("/ask", data={"video_id": "nope", "question": "q", "options": ["a"]}), 404, "nope")
    assert_refused(client.get("/search", params={"q": ""}), 422, "q")
    assert_refused(client.get("/search", params={"q": "a square", "k": "0"}), 422, "k")
    assert_refused(client.get("/streams/unknown"), 404, "unknown")
    assert_refused(client.get("/streams/unknown/events"), 404, "unknown")  # before an event stream opens
    assert_refused(client.post("/ask", data={"path": "clips/01.mp4", "question": "q", "beam": "0"}), 422, "beam")
    assert_refused(client.post("/caption", data={"path": "clips/01.mp4", "start": "2", "end": "1"}), 422, "end")
    assert_refused(client.get("/no-such-endpoint"), 404, "Not Found")


def test_paths_outside_the_roots_are_refused(api, clip_manifest, tmp_path):
    client, _ = api
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    link = clip_manifest.parent / "link.mp4"
    link.symlink_to(outside)
    try:
        for path in ["../" * 8 + str(outside)[1:], str(outside), "clips/../../" + outside.name, "link.mp4"]:
            assert_refused(client.post("/classify", data={"labels": LABELS, "path": path}), 403, "outside")
            assert_refused(client.get("/video", params={"path": path}), 403, "outside")
        assert_refused(client.post("/classify", data={"labels": LABELS, "path": "clips/99.mp4"}), 404, "no such file")
        for inside_but_not_media in [clip_manifest.name, "clips/../" + clip_manifest.name]:  # the manifest, in a root
            assert_refused(client.get("/video", params={"path": inside_but_not_media}), 403, "only media")
            assert_refused(client.get("/thumbnail", params={"path": inside_but_not_media}), 403, "only media")
        assert_refused(client.post("/classify", data={"labels": LABELS, "path": "x" * 5000}), 400, "too long")
    finally:
        link.unlink()


def test_a_long_video_is_refused_before_decoding(model, stream_video):
    with serving(model, roots=[stream_video.parent], limits={"max_duration_s": 2}) as (client, _):
        assert_refused(client.post("/streams", data={"path": stream_video.name}), 413, "2 s")
    with serving(model, roots=[stream_video.parent], limits={"max_clip_decoded_mb": 0.1}) as (client, _):
        assert_refused(client.post("/classify", data={"path": stream_video.name, "labels": "a"}), 413, "MB decoded")


def test_the_token_guards_the_api_but_not_the_page(model, clips):
    with serving(model, token="s3cret") as (client, _):
        assert_refused(client.get("/info"), 401, "token")
        assert_refused(client.get("/info", headers={"Authorization": "Bearer wrong"}), 401, "token")
        assert client.get("/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        client.cookies.set("vljepa_token", "s3cret")
        assert client.get("/info").status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200


def test_a_full_queue_and_a_slow_model_are_refused_at_once(model, clips, stream_video):
    limits = {"max_queue": 1, "max_stream_jobs": 1, "request_timeout_s": 0.3}
    with serving(model, limits=limits) as (client, server):
        with blocked(server, full=True):
            response = client.post("/classify", files=upload(clips / "02.mp4"), data={"labels": LABELS})
            assert_refused(response, 503, "busy")
            assert response.headers["retry-after"] == "1"
        with blocked(server):
            assert_refused(client.post("/caption", files=upload(clips / "02.mp4")), 504, "0.3 s")
        with blocked(server):
            assert client.post("/streams", files=upload(stream_video)).status_code == 202
            assert_refused(client.post("/streams", files=upload(stream_video)), 429, "stream jobs")
        assert client.get("/healthz").status_code == 200


def test_search_returns_the_index_hits_with_thumbnails_and_players(api, model, library, stream_video):
    client, _ = api
    query = "a green square moves left"
    expected = library.search_text(model, [query], 4)[0]
    found = client.get("/search", params={"q": query, "k": "4"})
    assert found.status_code == 200, found.text
    results = found.json()["results"]
    assert [(r["path"], r["start"], r["end"]) for r in results] == [(h.path, h.start or 0.0, h.end) for h in expected]
    assert [r["score"] for r in results] == pytest.approx([h.score for h in expected], abs=1e-6)
    for result in results:  # outside the roots, but the index returned them
        thumbnail = client.get(result["thumbnail_url"])
        assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")
        assert client.get(result["video_url"]).content == Path(result["path"]).read_bytes()
    window = next(r for r in results if r["end"] is not None)
    assert window["thumbnail_url"].endswith(f"&t={0.5 * (window['start'] + window['end'])}")
    assert_refused(client.get("/search", params={"q": "x", "k": "101"}), 422, "k")


def test_decoding_without_a_decoder_is_a_clear_refusal(clips, stream_video):
    torch.manual_seed(0)
    with serving(VLJepa(tiny_model_config())) as (client, _):
        assert_refused(client.get("/search", params={"q": "a square"}), 400, "--index")
        assert_refused(client.post("/caption", files=upload(clips / "00.mp4")), 400, "train-decoder")
        assert_refused(client.post("/streams", files=upload(stream_video)), 400, "train-decoder")
        assert_refused(client.post("/ask", files=upload(clips / "00.mp4"), data={"question": "q"}), 400, "Y-decoder")
        chosen = client.post("/ask", files=upload(clips / "00.mp4"), data={"question": "q", "options": ["a", "b"]})
        assert chosen.status_code == 200 and chosen.json()["answer"] in ("a", "b")


def test_stopping_the_server_ends_a_running_stream_job(model, stream_video):
    gate = threading.Event()
    with serving(model) as (client, server):
        server.worker.call(lambda model: gate.wait())
        job_id = client.post("/streams", files=upload(stream_video)).json()["id"]
        while not server.worker.queued:  # the job's first batch of windows waits for the model
            time.sleep(0.001)
        threading.Timer(0.5, gate.set).start()  # the model thread frees up once the server is stopping
    job = server.jobs.get(job_id)
    assert job.status == "failed" and job.error == "the server stopped before this stream was captioned"
    assert [event.kind for event in job.events] == ["failed"]
