"""Decoding only the groups of pictures (GOPs) that hold the frames a read samples (used by `video`).

A GOP runs from a keyframe to the next one in decoding order. Decoding can start at a keyframe only if
no frame from it on refers to an earlier one: we take that to hold when the keyframe is the first frame
of its GOP on screen and every frame of the GOP is shown after every frame of the earlier GOPs (closed
GOPs, x264's default). A GOP that breaks this (open GOPs: B-frames shown before their keyframe, which may
refer to the GOP before) joins the unit of the GOP before it. A decoding unit is therefore an interval of
the frames in presentation order, and a frame belongs to the unit whose keyframe is the last one shown at
or before it.

A read is planned as runs of units: each run seeks to a unit's keyframe and decodes up to the last frame
it needs. Skipped frames between two needed units are decoded through, in the same run, unless there are
more than `SEEK_COST_FRAMES` of them (ours: a seek costs the demuxer's index lookup, the decoder's flush
and the refill of any frame threads, about as much as decoding a few frames; skipping only stretches
several times that long keeps a seek from costing more than it saves).
A plan that skips nothing is not used: the caller's single decoding pass does the same work without a
seek.

Every run checks what it decodes against the plan: the packets from the keyframe on must be the planned
ones (time, size, keyframe flag) and the frames must come out at exactly the planned times, one for each;
anything else (a seek that lands after the keyframe, as approximate seeks in MPEG-TS can, frames that do
not decode) makes the decoding return None, and the caller reads in a single pass instead.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np

SEEK_COST_FRAMES = 16


class Packet(NamedTuple):
    time: float  # presentation time in seconds
    size: int
    keyframe: bool


class Run(NamedTuple):
    keyframe: int  # the index, in the packets in decoding order, of the keyframe the run starts at
    first: int  # the position of that keyframe's frame in the sorted frame times
    last: int  # the position of the last frame the run needs


def _unit_starts(packets: list[Packet]) -> list[int]:
    """Indices of the keyframe packets that start a decoding unit (see the module docstring)."""
    bounds = [0] + [i for i, packet in enumerate(packets) if packet.keyframe and i > 0] + [len(packets)]
    starts: list[int] = []
    shown_before = -float("inf")  # the latest time of the frames of the earlier GOPs
    for begin, stop in zip(bounds, bounds[1:], strict=False):
        times = [packet.time for packet in packets[begin:stop]]
        if begin == 0 or (min(times) == packets[begin].time and min(times) > shown_before):
            starts.append(begin)
        shown_before = max(shown_before, *times)
    return starts


def plan_runs(packets: list[Packet], times: list[float], needed: list[int]) -> list[Run] | None:
    """The runs that decode the frames at the positions `needed` (sorted) of `times` (the sorted frame times
    of `packets` that the read covers); None if they skip nothing or the packets cannot be split into units
    (the first is not a keyframe, or two share a time)."""
    if not packets or not packets[0].keyframe or len({packet.time for packet in packets}) < len(packets):
        return None
    starts = _unit_starts(packets)
    unit_times = [packets[start].time for start in starts]
    runs = [Run(0, 0, -1)]  # the read's starting point, needing nothing yet
    for position in needed:
        unit = bisect_right(unit_times, times[position]) - 1
        first = bisect_left(times, unit_times[unit])
        if first - runs[-1].last - 1 <= SEEK_COST_FRAMES:  # decode through the frames in between
            runs[-1] = runs[-1]._replace(last=position)
        else:
            runs.append(Run(starts[unit], first, position))
    if runs[0].last < 0:
        runs.pop(0)
    return runs if len(runs) > 1 or runs[0].first > 0 else None


def decode_runs(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    packets: list[Packet],
    times: list[float],
    runs: list[Run],
    keep: set[int],
    to_rgb: Callable[[av.VideoFrame], np.ndarray],
) -> dict[int, np.ndarray] | None:
    """The frames at the positions `keep` of `times`, converted to RGB, decoding only `runs`; None if the
    decoding differs from the plan."""
    kept: dict[int, np.ndarray] = {}
    for run in runs:
        if not _decode_run(container, stream, packets, times, run, keep, kept, to_rgb):
            return None
    return kept


def _decode_run(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    packets: list[Packet],
    times: list[float],
    run: Run,
    keep: set[int],
    kept: dict[int, np.ndarray],
    to_rgb: Callable[[av.VideoFrame], np.ndarray],
) -> bool:
    """Seek to the run's keyframe and decode to its last frame, adding the frames in `keep` to `kept`;
    False as soon as a packet or a frame differs from the plan."""
    keyframe_time = packets[run.keyframe].time
    container.seek(round(Fraction(keyframe_time) / stream.time_base), stream=stream, backward=True)
    next_packet, position = run.keyframe, run.first
    for packet in container.demux(stream):
        if packet.size:  # not the closing empty packet, which flushes the decoder
            if packet.pts is None:
                return False
            time = float(packet.pts * stream.time_base)
            if next_packet == run.keyframe and time < keyframe_time:
                continue  # the seek landed on an earlier keyframe: demux on to the run's own
            planned = packets[next_packet] if next_packet < len(packets) else None
            if planned is not None and Packet(time, packet.size, bool(packet.is_keyframe)) != planned:
                return False
            next_packet += 1
        for frame in packet.decode():
            if frame.time is None or float(frame.time) != times[position]:
                return False
            if position in keep:
                kept[position] = to_rgb(frame)
            position += 1
            if position > run.last:
                return True
    return False
