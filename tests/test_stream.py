"""Stream segmentation: windows, uniform bins, Ward with a temporal chain, the online detector."""

from __future__ import annotations

import numpy as np
import pytest

from vljepa.data.video import sliding_windows
from vljepa.tasks.stream import (
    OnlineSegmenter,
    decode_points,
    online,
    uniform,
    ward,
    window_times,
)

BOUNDARIES = [0, 20, 50]  # first index of each regime


def regime_stream(noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three piecewise-constant regimes (20, 30, 25 windows) of random 16-d directions, plus noise."""
    rng = np.random.default_rng(seed)
    bases = rng.normal(size=(3, 16))
    labels = np.repeat([0, 1, 2], [20, 30, 25])
    scale = noise * np.linalg.norm(bases[labels], axis=1, keepdims=True)
    embeddings = bases[labels] + scale * rng.normal(size=(len(labels), 16))
    return embeddings, np.arange(len(labels)) * 0.5 + 1.0


def firsts(segments) -> list[int]:
    return [s.members[0] for s in segments]


def assert_tiles(segments, n: int) -> None:
    assert [i for s in segments for i in s.members] == list(range(n))
    for before, after in zip(segments, segments[1:]):
        assert before.end == pytest.approx(after.start)


def test_sliding_windows():
    assert sliding_windows(10, 2, 1)[-1] == (8.0, 10.0) and len(sliding_windows(10, 2, 1)) == 9
    assert sliding_windows(10.5, 2, 1)[-1] == (8.5, 10.5) and len(sliding_windows(10.5, 2, 1)) == 10
    assert sliding_windows(1.5, 2, 1) == [(0.0, 1.5)]
    np.testing.assert_allclose(window_times([(0, 2), (1, 3)]), [1.0, 2.0])


def test_uniform_count():
    times = np.arange(100.0)
    segments = uniform(times, hz=0.1)
    assert len(segments) == 10 and all(len(s.members) == 10 for s in segments)
    assert_tiles(segments, 100)
    assert len(uniform(times, hz=100)) == 100
    assert len(uniform(times, hz=1e-6)) == 1


def test_ward_recovers_regimes():
    embeddings, times = regime_stream()
    segments = ward(embeddings, times, num_segments=3)
    assert firsts(segments) == BOUNDARIES
    assert_tiles(segments, len(times))
    assert segments[1].start == pytest.approx(0.5 * (times[19] + times[20]))


def test_online_finds_regimes_and_respects_min_length():
    embeddings, times = regime_stream()
    segments = online(embeddings, times, threshold=0.2, smoothing=0.5, min_length=4)
    assert len(segments) == 3
    assert all(abs(found - true) <= 1 for found, true in zip(firsts(segments), BOUNDARIES))
    assert_tiles(segments, len(times))
    noisy = online(np.random.default_rng(1).normal(size=(60, 16)), np.arange(60.0), threshold=0.01, min_length=4)
    assert len(noisy) > 5
    assert all(len(s.members) >= 4 for s in noisy[:-1])


def test_online_is_incremental():
    embeddings, times = regime_stream()
    segmenter = OnlineSegmenter(threshold=0.2, min_length=4)
    closed_at = [i for i, (e, t) in enumerate(zip(embeddings, times)) if segmenter.push(e, t) is not None]
    assert closed_at == firsts(online(embeddings, times, min_length=4))[1:]
    assert segmenter.flush().members[-1] == len(times) - 1


def test_decode_points():
    embeddings, times = regime_stream()
    segments = ward(embeddings, times, num_segments=3)
    point_times, means = decode_points(segments, embeddings)
    np.testing.assert_allclose(point_times, [s.midpoint for s in segments])
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 1.0)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    expected = unit[20:50].mean(0)
    np.testing.assert_allclose(means[1], expected / np.linalg.norm(expected))
