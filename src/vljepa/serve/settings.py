"""The server's settings: limits, batching and live stream captioning, with their defaults.

Defaults are for one machine serving itself (127.0.0.1): uploads up to 100 MB and 10 minutes, whole clips
(classify, ask, caption) up to 1 GB of decoded frames (they are held in memory at once; a stream is read
window by window), a request waits at most 60 s for the model. Stream jobs use the online segmenter so
each caption is sent as soon as its segment closes (the `stream` command's `--threshold`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config_loader import CheckedConfig, NonNegativeFloat, PositiveFloat, PositiveInt
from ..errors import ConfigError

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits(CheckedConfig):
    max_upload_mb: PositiveFloat = 100.0  # request body, and each stored upload
    max_duration_s: PositiveFloat = 600.0  # of any video a request names
    max_clip_decoded_mb: PositiveFloat = 1024.0  # whole-clip requests: frames x height x width x 3 bytes
    request_timeout_s: PositiveFloat = 60.0  # waiting for the model (queue + compute)
    max_queue: PositiveInt = 64  # model requests waiting; more -> 503
    max_stream_jobs: PositiveInt = 4  # stream jobs queued or running; more -> 429
    max_uploads: PositiveInt = 32  # stored uploads; the oldest is dropped beyond this
    max_labels: PositiveInt = 1000  # labels or options in one request

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)


@dataclass(frozen=True)
class Batching(CheckedConfig):
    enabled: bool = True
    max_batch: PositiveInt = 16  # predictions in one forward pass
    max_wait_ms: NonNegativeFloat = 5.0  # how long the first request of a batch waits for others


@dataclass(frozen=True)
class LiveStream(CheckedConfig):
    window_seconds: PositiveFloat = 2.0  # the clip length the model was trained on (world clips: 2 s)
    stride_seconds: PositiveFloat = 0.5
    threshold: PositiveFloat = 0.2  # cosine distance from the segment mean that closes a segment
    stall_seconds: PositiveFloat = 5.0  # live sources: seconds without new data that end the stream


@dataclass(frozen=True)
class ServeSettings(CheckedConfig):
    roots: tuple[Path, ...] = ()  # folders whose videos requests may name by path
    token: str | None = None  # bearer token every API request must carry (None: open)
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    stream: LiveStream = field(default_factory=LiveStream)
    upload_dir: Path | None = None  # None: a temporary folder removed at shutdown
    live_sources: dict[str, str] = field(default_factory=dict)  # name -> a live source captioned from the start

    def check(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ConfigError("token: empty (an unset variable?); give a token, or leave it out to serve without one")
        for name in self.live_sources:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ConfigError(f"live_sources: {name!r}: a name is letters, digits, - and _ (it is in the URL)")
