"""Captioning a video stream with selective decoding: windows -> embeddings -> segments -> one decode each.

Runs the pure engine of `stream.py` on a video file: `iter_window_arrays` decodes the file once and yields
sliding windows as they complete, the model predicts one query-free embedding per window (batched),
a segmenter cuts the embedding stream, and the Y-decoder writes one caption per segment from the
segment's mean embedding, stamped at the segment's midpoint. With the online segmenter each caption
is decoded (and handed to `on_caption`) as soon as its segment closes, as on a live stream; Ward and
uniform need the whole stream first. The model is a PyTorch `VLJepa` or an ONNX export's `OnnxVLJepa`: both
take uint8 frames and give embeddings, converted to numpy here (`embedding_array`), so a stream captioned by an
export never imports PyTorch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np

from ..core.config_loader import Bound, CheckedConfig, OneOf, PositiveFloat, PositiveInt
from ..data.video import iter_window_arrays
from .stream import OnlineSegmenter, Segment, decode_points, segment_count, uniform, ward, with_edges

if TYPE_CHECKING:
    from ..deploy.runtime import OnnxVLJepa
    from ..model.vljepa import VLJepa

    InferenceModel = VLJepa | OnnxVLJepa

SEGMENTERS = ("ward", "uniform", "online")


@dataclass
class StreamConfig(CheckedConfig):
    window_seconds: PositiveFloat = 2.0  # match the clip length the model was trained on (world clips: 2 s)
    stride_seconds: PositiveFloat = 0.5
    segmenter: Annotated[str, OneOf(SEGMENTERS)] = "ward"  # ward (offline, adaptive) | uniform (fixed rate) | online
    hz: PositiveFloat = 0.35  # ward and uniform: segments (decodes) per second of video
    threshold: PositiveFloat = 0.2  # online: cosine distance from the segment mean that closes it
    smoothing: Annotated[float, Bound(">=", 0), Bound("<", 1)] = 0.5  # online: EMA weight of the past
    min_length: PositiveInt = 3  # online: windows per segment at least
    batch_size: PositiveInt = 32  # windows per predictor call
    beam_size: PositiveInt = 1


@dataclass
class TimedCaption:
    time: float  # the segment's midpoint, seconds
    start: float
    end: float
    text: str


@dataclass
class StreamResult:
    times: np.ndarray  # (W,) window centres
    embeddings: np.ndarray  # (W, shared_dim) normalised predictions
    segments: list[Segment]
    captions: list[TimedCaption]
    seconds: dict[str, float] = field(default_factory=dict)  # wall time: embedding (incl. video decoding), decoding

    @property
    def duration(self) -> float:
        return self.segments[-1].end if self.segments else 0.0


def embedding_array(embeddings) -> np.ndarray:
    """A model's embeddings as a float32 array: an export's already are; PyTorch's are tensors of any precision."""
    return embeddings if isinstance(embeddings, np.ndarray) else embeddings.float().cpu().numpy()


def embed_windows(
    model: InferenceModel, path: str | Path, config: StreamConfig
) -> Iterator[tuple[tuple[float, float], np.ndarray]]:
    """((start, end), normalised query-free prediction) for each window, in order, batched."""
    batch: list[tuple[tuple[float, float], np.ndarray]] = []

    def flush() -> Iterator[tuple[tuple[float, float], np.ndarray]]:
        with model.inference():
            predicted = embedding_array(model.encode_video(np.stack([frames for _, frames in batch])))
        yield from zip([bounds for bounds, _ in batch], predicted)
        batch.clear()

    windows = iter_window_arrays(path, config.window_seconds, config.stride_seconds, model.num_frames)
    for (start, end), frames in windows:
        batch.append(((start, end), frames))
        if len(batch) == config.batch_size:
            yield from flush()
    if batch:
        yield from flush()


def decode_segments(
    model: InferenceModel, segments: list[Segment], embeddings: np.ndarray, beam_size: int = 1
) -> list[TimedCaption]:
    """One caption per segment, from its mean embedding, stamped at its midpoint."""
    if not segments:
        return []
    midpoints, means = decode_points(segments, embeddings)
    texts = model.decode(means.astype(np.float32), beam_size=beam_size)
    return [TimedCaption(float(t), s.start, s.end, text) for t, s, text in zip(midpoints, segments, texts)]


def offline_segments(embeddings: np.ndarray, times: np.ndarray, config: StreamConfig) -> list[Segment]:
    if config.segmenter == "uniform":
        return uniform(times, config.hz)
    return ward(embeddings, times, segment_count(times, config.hz))


def caption_stream(
    model: InferenceModel,
    path: str | Path,
    config: StreamConfig,
    on_caption: Callable[[TimedCaption], None] | None = None,
) -> StreamResult:
    """Caption a video file with selective decoding; `on_caption` sees each caption as it is decoded."""
    return caption_embedded(model, embed_windows(model, path, config), config, on_caption)


def caption_embedded(
    model: InferenceModel,
    embedded: Iterable[tuple[tuple[float, float], np.ndarray]],
    config: StreamConfig,
    on_caption: Callable[[TimedCaption], None] | None = None,
    keep_history: bool = True,
) -> StreamResult:
    """Selective decoding of a stream of ((start, end), embedding) windows. Without `keep_history` (a live
    stream that may never end: online segmenter only) the windows of each decoded segment are let go, and the
    result's `times` and `embeddings` hold only the windows after the last cut."""
    if not keep_history and config.segmenter != "online":
        raise ValueError("only the online segmenter can let go of the windows it has decoded")
    on_caption = on_caption or (lambda caption: None)
    times, embeddings, segments, captions = [], [], [], []
    released = 0  # windows let go so far (keep_history=False): embeddings[i] is window released + i
    seconds = {"embedding": 0.0, "decoding": 0.0}
    online = OnlineSegmenter(config.threshold, config.smoothing, config.min_length)
    edges = [0.0, 0.0]  # the first window's start and the last window's end

    def decode(new_segments: list[Segment]) -> None:
        """Decode segments, stacking only the windows from their first one on (a live stream grows)."""
        nonlocal released
        began = time.perf_counter()
        first = new_segments[0].members[0] if new_segments else released
        local = [replace(s, members=tuple(m - first for m in s.members)) for s in new_segments]
        new_captions = decode_segments(model, local, np.stack(embeddings[first - released :]), config.beam_size)
        seconds["decoding"] += time.perf_counter() - began
        segments.extend(new_segments)
        captions.extend(new_captions)
        for caption in new_captions:
            on_caption(caption)
        if not keep_history and new_segments:
            done = new_segments[-1].members[-1] + 1 - released
            del times[:done], embeddings[:done]
            released += done

    began = time.perf_counter()
    for (start, end), embedding in embedded:
        edges[:] = [edges[0] if times or released else start, end]
        times.append(0.5 * (start + end))
        embeddings.append(embedding)
        if config.segmenter == "online" and (closed := online.push(embedding, times[-1])) is not None:
            seconds["embedding"] += time.perf_counter() - began
            decode(with_edges([closed], start=None if segments else edges[0]))
            began = time.perf_counter()
    seconds["embedding"] += time.perf_counter() - began
    if not times and not released:
        raise ValueError("the stream has no windows")
    if config.segmenter == "online":
        last = online.flush()
        decode(with_edges([last] if last else [], start=None if segments else edges[0], end=edges[1]))
    else:
        times_array, embedding_array = np.array(times), np.stack(embeddings)
        began = time.perf_counter()
        cut = offline_segments(embedding_array, times_array, config)
        seconds["segmenting"] = time.perf_counter() - began
        decode(with_edges(cut, *edges))
    dim = model.shared_dim
    return StreamResult(
        np.array(times), np.stack(embeddings) if embeddings else np.zeros((0, dim)), segments, captions, seconds
    )
