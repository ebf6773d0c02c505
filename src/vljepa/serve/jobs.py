"""Stream captioning jobs: selective decoding of a long video, each caption published as it is decoded.

Ours: a job runs `tasks.stream_captioner.caption_stream` with the online segmenter (a caption as soon
as its segment closes, as on a live stream) in the jobs' own thread, where the video is decoded; its
model work (a batch of windows, a decode) goes through the model thread as `call`s, so stream jobs and
interactive requests share the one model thread instead of competing for the cores. Jobs wait in a
bounded queue (`max_stream_jobs` queued or running; more is refused) and run one at a time. Every
event (a segment, the end, a failure) is appended to the job's list; a listener replays the list from
the start and then waits for more, so one that connects late misses nothing. Finished jobs are kept
(their timeline) until `max_stream_jobs` x 8 newer ones have finished.
Live sources (`vljepa serve --live NAME=SOURCE`) are jobs too, named by the operator and started with the
server, each on its own thread (a live source has no end to wait for): `tasks.live_captioner.caption_live`
reads it through its bounded queue, its model calls go through the model thread like every job's, and its
captions are events at `/streams/NAME/events`. Clients can follow a live source, never name one: the server
opens only the sources its operator gave.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..tasks.live_captioner import caption_live
from ..tasks.stream_captioner import StreamConfig, TimedCaption, caption_stream
from .batching import ModelWorker
from .settings import LiveStream
from .uploads import VideoSource

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class JobsFull(Exception):
    """As many stream jobs as allowed are queued or running."""


@dataclass
class Event:
    kind: str  # "segment" | "done" | "failed"
    data: dict[str, Any]


@dataclass
class StreamJob:
    id: str
    video: VideoSource | None  # None: a live source
    status: str = QUEUED
    segments: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    def timeline(self) -> dict[str, Any]:
        if self.video is None:
            return {
                "id": self.id,
                "status": self.status,
                "live": True,
                "segments": list(self.segments),
                "error": self.error,
            }
        return {
            "id": self.id,
            "status": self.status,
            "video_id": self.video.id,
            "video_url": self.video.url,
            "name": self.video.name,
            "duration": self.video.facts.duration,
            "segments": list(self.segments),
            "error": self.error,
        }

    def publish(self, event: Event, status: str | None = None) -> None:
        with self._lock:
            self.events.append(event)
            self.status = status or self.status
            listeners = list(self._listeners)
        for loop, wake in listeners:
            loop.call_soon_threadsafe(wake.set)

    async def events_after(self, count: int) -> list[Event]:
        """The events after the first `count`, waiting until there is one (none: the job has finished)."""
        wake = asyncio.Event()
        entry = (asyncio.get_running_loop(), wake)
        with self._lock:
            if len(self.events) > count or self.finished:
                return self.events[count:]
            self._listeners.append(entry)
        try:
            await wake.wait()
        finally:
            with self._lock:
                self._listeners.remove(entry)
        with self._lock:
            return self.events[count:]


class _QueuedModel:
    """What `caption_stream` needs of a model, each call run by the model thread; once `stopping` is set,
    the next call ends the job (so the server stops without waiting for a long stream)."""

    def __init__(self, worker: ModelWorker, stopping: threading.Event):
        self._worker = worker
        self._stopping = stopping
        self.num_frames, self.shared_dim = worker.model.num_frames, worker.model.shared_dim

    def _run(self, function):
        if self._stopping.is_set():
            raise RuntimeError("the server stopped before this stream was captioned")
        return self._worker.call(function).result()

    @contextmanager
    def inference(self) -> Iterator[_QueuedModel]:
        yield self  # the model thread runs every call under the model's own `inference()`

    def encode_video(self, frames: np.ndarray, query: str | None = None) -> torch.Tensor | np.ndarray:
        return self._run(lambda model: model.encode_video(frames, query))

    def decode(self, embeddings: np.ndarray, beam_size: int = 1) -> list[str]:
        return self._run(lambda model: model.decode(embeddings, beam_size=beam_size))


class StreamJobs:
    def __init__(self, worker: ModelWorker, live: LiveStream, max_jobs: int):
        self.worker = worker
        self.config = StreamConfig(
            window_seconds=live.window_seconds,
            stride_seconds=live.stride_seconds,
            segmenter="online",
            threshold=live.threshold,
        )
        self.max_jobs = max_jobs
        self.stall_seconds = live.stall_seconds
        self._jobs: OrderedDict[str, StreamJob] = OrderedDict()
        self._pending: queue.Queue[StreamJob | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="vljepa-streams", daemon=True)
        self._stopping = threading.Event()
        self._live: list[threading.Thread] = []

    def start(self, live_sources: dict[str, str] | None = None) -> None:
        self._thread.start()
        for name, source in (live_sources or {}).items():
            job = StreamJob(name, None, RUNNING)
            with self._lock:
                self._jobs[name] = job
            thread = threading.Thread(
                target=self._run_live, args=(job, source), name=f"vljepa-live-{name}", daemon=True
            )
            thread.start()
            self._live.append(thread)

    def stop(self) -> None:
        """End the running jobs at their next model call, fail the queued ones, and end the threads."""
        self._stopping.set()
        self._pending.put(None)
        self._thread.join()
        for thread in self._live:
            thread.join(timeout=10)

    def submit(self, video: VideoSource) -> StreamJob:
        with self._lock:
            active = sum(not job.finished for job in self._jobs.values())
            if active >= self.max_jobs:
                raise JobsFull(f"{active} stream jobs are queued or running (the server's limit)")
            job = StreamJob(uuid.uuid4().hex, video)
            self._jobs[job.id] = job
            finished = [key for key, old in self._jobs.items() if old.finished]
            for key in finished[: max(0, len(finished) - 8 * self.max_jobs)]:
                del self._jobs[key]
        self._pending.put(job)
        return job

    def get(self, job_id: str) -> StreamJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self) -> None:
        while (job := self._pending.get()) is not None:
            job.status = RUNNING
            self._caption(
                job, lambda model, on_caption, job=job: caption_stream(model, job.video.path, self.config, on_caption)
            )

    def _run_live(self, job: StreamJob, source: str) -> None:
        self._caption(
            job,
            lambda model, on_caption: caption_live(
                model, source, self.config, on_caption, stall_seconds=self.stall_seconds
            ),
        )

    def _caption(self, job: StreamJob, caption) -> None:
        """Run `caption(model, on_caption)` for the job, publishing each caption, then its end or failure."""

        def on_caption(caption: TimedCaption) -> None:
            segment = dataclasses.asdict(caption)
            job.segments.append(segment)
            job.publish(Event("segment", segment))

        try:
            caption(_QueuedModel(self.worker, self._stopping), on_caption)
        except Exception as error:  # the job fails with a message; the server and the next job go on
            message = str(error) if job.video is None else str(error).replace(str(job.video.path), job.video.name)
            job.error = " ".join(message.split())
            job.publish(Event("failed", {"error": job.error}), FAILED)
            return
        job.publish(Event("done", job.timeline() | {"status": DONE}), DONE)
