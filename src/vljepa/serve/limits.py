"""What a request may ask for: videos checked by their content, paths inside the allowed roots, the token.

Ours: a video is judged by demuxing and decoding it, never by its name or declared type. `probe_video`
reads the container's packets (no decoding: cheap, and the packet timestamps give the real duration and
frame count, not the header's claim) to refuse a video that is too long, or whose decoded frames would
not fit the whole-clip budget, before anything is decoded; the decoding itself (`data.video`) then
refuses what does not decode. Paths are resolved (symlinks followed, `..` collapsed) before they are
compared with the resolved roots, so neither a traversal nor a link out of a root gets through, and only
video and image files are handed out by path: a root may also hold manifests, configs or keys.
Every refusal is a `RequestError` carrying its HTTP status and a message that names the file as the
client named it (never the server's temporary path).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

import av
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..data.clip_source import MEDIA_SUFFIXES  # the only files a request may name by path
from ..errors import VljepaError
from .settings import MB, Limits


class RequestError(VljepaError):
    """A request the server refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class VideoFacts:
    duration: float  # seconds, from the packets' timestamps
    frames: int
    width: int
    height: int

    @property
    def decoded_bytes(self) -> int:
        return self.frames * self.width * self.height * 3


def probe_video(path: Path, name: str, limits: Limits) -> VideoFacts:
    """The video's facts from its packets; 415 if it is not a video container with a video stream, 413 if
    longer than `max_duration_s`."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise RequestError(415, f"{name}: no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            frames, end = 0, 0.0
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                frames += 1
                if packet.pts is not None and packet.time_base is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                if end > limits.max_duration_s:
                    raise RequestError(413, f"{name}: longer than the server's limit of {limits.max_duration_s:g} s")
    except RequestError:
        raise
    except Exception as error:  # PyAV raises many error types; every one means "not a video we can read"
        raise RequestError(415, f"{name}: not a readable video ({type(error).__name__})") from error
    if frames == 0 or not width or not height:
        raise RequestError(415, f"{name}: no video frames")
    return VideoFacts(end, frames, width, height)


def check_whole_clip(facts: VideoFacts, name: str, limits: Limits) -> None:
    """413 if the video's frames, all held at once (classify, ask, caption), exceed the decoded budget."""
    if facts.decoded_bytes > limits.max_clip_decoded_mb * MB:
        raise RequestError(
            413,
            f"{name}: {facts.frames} frames of {facts.width}x{facts.height} are {facts.decoded_bytes / MB:.0f} MB "
            f"decoded, over the server's {limits.max_clip_decoded_mb:g} MB for one clip; send a shorter or smaller clip",
        )


def allowed_path(raw: str, roots: tuple[Path, ...]) -> Path:
    """The file `raw` names (absolute, or relative to a root), resolved; 403 outside every root or when it is not
    a video or image (a root may hold manifests, configs or keys, which the server never hands out), 404 if
    absent."""
    if not roots:
        raise RequestError(403, "this server reads no files by path (start it with --root DIR)")
    if "\0" in raw or not raw.strip():
        raise RequestError(400, f"path {raw!r}: not a file path")
    resolved_roots = [root.resolve() for root in roots]
    candidates = [Path(raw)] if Path(raw).is_absolute() else [root / raw for root in resolved_roots]
    inside = False
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            if any(resolved.is_relative_to(root) for root in resolved_roots):
                inside = True
                if resolved.is_file():
                    if resolved.suffix.lower() not in MEDIA_SUFFIXES:
                        raise RequestError(403, f"path {raw!r}: not a video or image; this server reads only media")
                    return resolved
        except OSError as error:  # a name too long, a link loop
            raise RequestError(400, f"path {raw!r}: {error.strerror or error}") from None
    if not inside:
        raise RequestError(403, f"path {raw!r}: outside the folders this server may read")
    raise RequestError(404, f"path {raw!r}: no such file")


def token_accepted(expected: str | None, authorization: str | None, cookie: str | None) -> bool:
    """True when no token is set, or the request carries it as `Authorization: Bearer T` or the page's cookie."""
    if expected is None:
        return True
    offered = [cookie or ""]
    if authorization and authorization.lower().startswith("bearer "):
        offered.append(authorization[7:].strip())
    return any(hmac.compare_digest(value.encode(), expected.encode()) for value in offered)


class BodyLimit:
    """ASGI middleware capping a request body at `max_bytes`: reading past it (or a larger declared
    Content-Length) raises HTTP 413 inside the app, so the app's own error handler answers it."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise HTTPException(413)
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413)
            return message

        await self.app(scope, limited, send)
