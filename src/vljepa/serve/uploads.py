"""A bounded store of uploaded videos: each gets an id that later requests (ask, play) can name.

Ours: files are written under the server's upload folder with a random name (the client's name is kept
only for messages and its suffix, which tells an image from a video); at most `max_uploads` are kept,
the oldest removed first, so the folder cannot grow without bound.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .limits import RequestError, VideoFacts

SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")


@dataclass(frozen=True)
class VideoSource:
    """A video a request named: an upload (with its id) or a file under an allowed root (id None)."""

    path: Path  # on the server
    name: str  # as the client named it: what messages show
    facts: VideoFacts
    url: str  # where the page plays it
    id: str | None = None


class UploadStore:
    def __init__(self, directory: Path, max_uploads: int):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_uploads = max_uploads
        self._videos: OrderedDict[str, VideoSource] = OrderedDict()
        self._lock = threading.Lock()

    def new_path(self, client_name: str) -> Path:
        """A fresh file path for an upload, keeping a short alphanumeric suffix of the client's name."""
        suffix = Path(client_name).suffix.lower()
        return self.directory / (uuid.uuid4().hex + (suffix if SAFE_SUFFIX.fullmatch(suffix) else ""))

    def add(self, path: Path, name: str, facts: VideoFacts) -> VideoSource:
        video = VideoSource(path, name, facts, f"/video/{path.stem}", path.stem)
        with self._lock:
            self._videos[path.stem] = video
            while len(self._videos) > self.max_uploads:
                _, oldest = self._videos.popitem(last=False)
                oldest.path.unlink(missing_ok=True)
        return video

    def get(self, video_id: str) -> VideoSource:
        with self._lock:
            if video_id not in self._videos:
                raise RequestError(404, f"video_id {video_id!r}: no such upload (uploads are kept {self.max_uploads})")
            return self._videos[video_id]
