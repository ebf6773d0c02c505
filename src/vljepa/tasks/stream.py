"""Selective decoding on a stream: segmenters and one decode point per segment (the sliding windows
themselves are `data.video.sliding_windows`).

Paper: one prediction per sliding window gives an embedding stream; agglomerative clustering with
Ward linkage and a temporal connectivity constraint (only neighbours merge) cuts it into
N = f x duration contiguous segments, and each segment is decoded once at its midpoint, from the
segment's average embedding. Adaptive segmentation at 0.35 Hz matches uniform decoding at 1 Hz. An
online variant decodes when the local variance of the smoothed stream exceeds a threshold.
Ours: pure functions over numpy arrays (no model, no I/O). `uniform` cuts time into equal bins,
`ward` is sklearn's `AgglomerativeClustering(linkage="ward")` on the L2-normalised embeddings with a
chain connectivity graph. The online detector (`OnlineSegmenter`) sees one embedding at a time: it
keeps an exponential moving average of the stream and closes the current segment when the cosine
distance between the smoothed embedding and the segment's running mean exceeds `threshold`, but
never before the segment holds `min_length` windows (a duration floor: no burst of decodes on a
noisy stretch). The distance to the segment mean is our concrete form of the paper's "local
variance"; after a cut the average restarts from the new embedding so the old event does not leak
into the new one. A segment spans from halfway to its previous neighbour's time to halfway to its
next one's (the first and last stop at the stream's first and last times), so segments tile the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.sparse import diags
from sklearn.cluster import AgglomerativeClustering


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    members: tuple[int, ...]  # indices into the embedding stream, contiguous and increasing

    @property
    def midpoint(self) -> float:
        return 0.5 * (self.start + self.end)


def window_times(windows: list[tuple[float, float]]) -> np.ndarray:
    """The time of each window's embedding: its centre."""
    return np.array([0.5 * (start + end) for start, end in windows])


def segments_from_labels(labels: np.ndarray, times: np.ndarray) -> list[Segment]:
    """Runs of equal consecutive labels -> segments, in stream order."""
    times = np.asarray(times, dtype=float)
    cuts = [0, *(np.flatnonzero(np.diff(labels)) + 1).tolist(), len(labels)]
    segments = []
    for first, stop in zip(cuts[:-1], cuts[1:]):
        start = times[first] if first == 0 else 0.5 * (times[first - 1] + times[first])
        end = times[stop - 1] if stop == len(times) else 0.5 * (times[stop - 1] + times[stop])
        segments.append(Segment(float(start), float(end), tuple(range(first, stop))))
    return segments


def segment_count(times: np.ndarray, hz: float) -> int:
    """N = hz x duration of the stream (its first to last time), at least 1 and at most one per window."""
    duration = float(times[-1] - times[0]) if len(times) else 0.0
    return int(min(len(times), max(1, round(hz * duration))))


def uniform(times: np.ndarray, hz: float) -> list[Segment]:
    """Equal time bins, `segment_count(times, hz)` of them (bins holding no window are dropped)."""
    times = np.asarray(times, dtype=float)
    count = segment_count(times, hz)
    span = max(float(times[-1] - times[0]), 1e-9)
    labels = np.minimum(((times - times[0]) / span * count).astype(int), count - 1)
    return segments_from_labels(labels, times)


def _unit(embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float64)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)


def ward(embeddings: np.ndarray, times: np.ndarray, num_segments: int) -> list[Segment]:
    """Ward clustering of the normalised stream into `num_segments` contiguous segments."""
    n = len(embeddings)
    num_segments = min(num_segments, n)
    if num_segments <= 1 or n < 2:
        return segments_from_labels(np.zeros(n, dtype=int), times)
    chain = diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], shape=(n, n))
    labels = AgglomerativeClustering(n_clusters=num_segments, linkage="ward", connectivity=chain).fit_predict(
        _unit(embeddings)
    )
    return segments_from_labels(labels, times)


@dataclass
class OnlineSegmenter:
    """Online change detector, fed one embedding at a time with `push`; `flush` ends the stream.
    `smoothing` is the EMA weight of the past (0 = no smoothing). Every segment `push` closes has at
    least `min_length` members; only the one `flush` closes may be shorter (the stream ended)."""

    threshold: float = 0.2
    smoothing: float = 0.5
    min_length: int = 3
    _count: int = field(default=0, init=False, repr=False)  # embeddings seen so far
    _members: list[int] = field(default_factory=list, init=False, repr=False)  # the open segment
    _times: list[float] = field(default_factory=list, init=False, repr=False)
    _smoothed: np.ndarray | None = field(default=None, init=False, repr=False)  # EMA of the stream
    _sum: np.ndarray | None = field(default=None, init=False, repr=False)  # of the open segment's EMA values
    _last_end: float | None = field(default=None, init=False, repr=False)

    def push(self, embedding: np.ndarray, time: float) -> Segment | None:
        """Add the next embedding; returns the segment it closes, if any."""
        unit = _unit(embedding)
        if self._smoothed is None:
            self._smoothed = unit
        else:
            self._smoothed = self.smoothing * self._smoothed + (1 - self.smoothing) * unit
        closed = None
        if self._members and len(self._members) >= self.min_length:
            mean = _unit(self._sum)
            distance = 1.0 - float(_unit(self._smoothed) @ mean)
            if distance > self.threshold:
                closed = self._close(end=0.5 * (self._times[-1] + time))
                self._smoothed = unit
        self._members.append(self._count)
        self._count += 1
        self._times.append(float(time))
        self._sum = self._smoothed.copy() if self._sum is None else self._sum + self._smoothed
        return closed

    def flush(self) -> Segment | None:
        """Close the last open segment at the stream's end."""
        return self._close(end=self._times[-1]) if self._members else None

    def _close(self, end: float) -> Segment:
        start = self._times[0] if self._last_end is None else self._last_end
        segment = Segment(float(start), float(end), tuple(self._members))
        self._last_end = end
        self._members, self._times, self._sum = [], [], None
        return segment


def online(
    embeddings: np.ndarray, times: np.ndarray, threshold: float = 0.2, smoothing: float = 0.5, min_length: int = 3
) -> list[Segment]:
    """Run an `OnlineSegmenter` over a whole stream."""
    segmenter = OnlineSegmenter(threshold=threshold, smoothing=smoothing, min_length=min_length)
    segments = [s for e, t in zip(embeddings, times) if (s := segmenter.push(e, t)) is not None]
    last = segmenter.flush()
    return segments + ([last] if last is not None else [])


def with_edges(segments: list[Segment], start: float | None = None, end: float | None = None) -> list[Segment]:
    """Stretch the first segment back to `start` and the last forward to `end` (the stream's edges:
    segmenters cut at window centres, so they stop half a window short of each end)."""
    segments = list(segments)
    if segments and start is not None:
        segments[0] = replace(segments[0], start=float(start))
    if segments and end is not None:
        segments[-1] = replace(segments[-1], end=float(end))
    return segments


def decode_points(segments: list[Segment], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: its midpoint time (S,) and its normalised mean embedding (S, d), the decoder's input."""
    unit = _unit(embeddings)
    times = np.array([s.midpoint for s in segments])
    means = _unit(np.stack([unit[list(s.members)].mean(0) for s in segments]))
    return times, means
