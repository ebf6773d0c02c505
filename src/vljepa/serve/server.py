"""The server's state and the steps every request shares: name a video, decode its clip, wait for the model.

Ours: one `Server` per app holds the model thread, the stream jobs, the upload store and the index. A
request names its video in exactly one way (an upload, a `path` under an allowed root, or the `video_id`
of an earlier upload); the video is probed before it is decoded (`limits.probe_video`), decoded in a
worker thread (at most `DECODE_SLOTS` at once: each may hold a whole clip's frames), and its model work
waits at most `request_timeout_s` (then the queued work is cancelled and the client gets 504).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import quote

import torch
from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from ..data.video import VideoError, check_window, read_clip
from ..deploy.runtime import OnnxVLJepa
from ..model.vljepa import VLJepa
from .batching import Busy, ModelWorker
from .jobs import StreamJobs
from .limits import RequestError, allowed_path, check_whole_clip, probe_video
from .settings import MB, ServeSettings
from .uploads import UploadStore, VideoSource

DECODE_SLOTS = 2  # whole clips decoded at once: bounds memory to this many clip budgets


class Server:
    def __init__(
        self, model: VLJepa | OnnxVLJepa, settings: ServeSettings, index: Any = None, model_path: Path | None = None
    ):
        self.model = model
        self.settings = settings
        self.limits = settings.limits
        self.index = index
        self.model_path = model_path
        self.worker = ModelWorker(model, settings.batching, self.limits.max_queue)
        self.jobs = StreamJobs(self.worker, settings.stream, self.limits.max_stream_jobs)
        self._temporary = None if settings.upload_dir else tempfile.TemporaryDirectory(prefix="vljepa-serve-")
        self.uploads = UploadStore(settings.upload_dir or Path(self._temporary.name), self.limits.max_uploads)
        self.library_files: set[Path] = set()  # files the index returned: the page may show and play them
        self._library_lock = threading.Lock()
        self._decode_slots: asyncio.Semaphore | None = None

    def start(self) -> None:
        self.worker.start()
        self.jobs.start(self.settings.live_sources)

    def stop(self) -> None:
        self.jobs.stop()
        self.worker.stop()
        if self._temporary is not None:
            self._temporary.cleanup()

    def require_decoder(self, beam: int = 1) -> None:
        if not self.model.can_decode:
            raise RequestError(400, "this model has no Y-decoder: train one with `vljepa train-decoder`")
        if beam != 1 and isinstance(self.model, OnnxVLJepa):
            raise RequestError(422, f"beam: this server runs an ONNX export, which decodes greedily (1), not {beam}")

    def require_index(self) -> Any:
        if self.index is None:
            raise RequestError(400, "this server has no index: start it with --index INDEX")
        return self.index

    def remember_library_file(self, path: Path) -> None:
        with self._library_lock:
            self.library_files.add(path.resolve())

    def library_path(self, raw: str) -> Path:
        """A file the index returned, or one under an allowed root (as `limits.allowed_path`)."""
        with self._library_lock:
            if Path(raw).is_absolute() and Path(raw).resolve() in self.library_files:
                return Path(raw).resolve()
        return allowed_path(raw, self.settings.roots)

    async def source(self, video: UploadFile | None, path: str | None, video_id: str | None) -> VideoSource:
        """The one video the request names; 422 unless exactly one of the three is given."""
        given = [name for name, value in (("video", video), ("path", path), ("video_id", video_id)) if value]
        if len(given) != 1:
            raise RequestError(
                422,
                "name one video: a file upload `video`, a `path` under the server's folders, or an earlier upload's "
                f"`video_id` (got {', '.join(given) or 'none'})",
            )
        if video_id:
            return self.uploads.get(video_id)
        if path:
            resolved = self.library_path(path)
            facts = await run_in_threadpool(probe_video, resolved, path, self.limits)
            return VideoSource(resolved, path, facts, f"/video?path={quote(path, safe='')}")
        assert video is not None
        name = video.filename or "upload"
        stored = self.uploads.new_path(name)
        try:
            await run_in_threadpool(_copy, video, stored, self.limits.max_upload_mb, name)
            facts = await run_in_threadpool(probe_video, stored, name, self.limits)
        except BaseException:
            stored.unlink(missing_ok=True)
            raise
        return self.uploads.add(stored, name, facts)

    async def clip(self, source: VideoSource, start: float | None = None, end: float | None = None) -> torch.Tensor:
        """The clip's frames (T, H, W, 3) as the model reads them; 422 for a window outside the video,
        415 for a video that does not decode."""
        check_whole_clip(source.facts, source.name, self.limits)
        try:
            check_window(Path(source.name), start, end, source.facts.duration)
        except VideoError as error:
            raise RequestError(422, str(error)) from None
        if self._decode_slots is None:
            self._decode_slots = asyncio.Semaphore(DECODE_SLOTS)
        async with self._decode_slots:
            try:
                return await run_in_threadpool(read_clip, source.path, self.model.num_frames, start, end)
            except VideoError as error:
                raise RequestError(415, str(error).replace(str(source.path), source.name)) from None

    async def wait(self, future: Future) -> Any:
        """The model's result, or 504 after `request_timeout_s` (the work is cancelled if it has not started)."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.limits.request_timeout_s)
        except TimeoutError:
            future.cancel()
            raise RequestError(504, f"the model did not answer within {self.limits.request_timeout_s:g} s") from None

    def submit(self, submit, *args) -> Future:
        """`submit(*args)` on the model thread's queue; 503 when it is full."""
        try:
            return submit(*args)
        except Busy as error:
            raise RequestError(503, f"server busy: {error}; retry shortly", {"Retry-After": "1"}) from None


def _copy(upload: UploadFile, target: Path, max_mb: float, name: str) -> None:
    upload.file.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    if target.stat().st_size > max_mb * MB:
        raise RequestError(413, f"{name}: larger than the server's limit of {max_mb:g} MB")
