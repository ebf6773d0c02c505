"""Selective decoding on a live source: windows through a bounded queue, a caption when the meaning changes.

A reader thread decodes the source as it arrives (`data/live.py`), cuts its sliding windows (`windows_of`) and
puts each in a queue of `queue_size` windows. When the queue is full because the model has fallen behind, the
new window is dropped and counted instead of waiting, so memory stays bounded and captions stay current. The
model takes the windows waiting (up to a batch), embeds them, and feeds the online change detector; a caption
is decoded as soon as its segment closes (`stream_captioner.caption_embedded`, which lets the decoded windows
go). A caption's latency runs from the arrival of the window that closed its segment (its last frame decoded)
to the caption. A reader error (a source that cannot be opened or decoded) reaches the caller; a source that
stops sending ends the stream after `stall_seconds`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..data.live import live_frames
from ..data.video import windows_of
from .stream_captioner import StreamConfig, StreamResult, TimedCaption, caption_embedded, embedding_array

if TYPE_CHECKING:
    from .stream_captioner import InferenceModel

_END = object()  # the reader's last item


@dataclass
class LiveResult:
    stream: StreamResult  # its times and embeddings: only the windows after the last cut
    windows: int  # cut from the source
    dropped: int  # of them, dropped because the queue was full
    latencies: list[float] = field(default_factory=list)  # seconds from window arrival to caption, per caption


class LiveWindows:
    """The windows of a live source, read on a thread into a bounded queue (see the module docstring)."""

    def __init__(self, source: str, config: StreamConfig, num_frames: int, queue_size: int, stall_seconds: float):
        self.windows = self.dropped = 0
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.done = threading.Event()
        arguments = (source, config, num_frames, stall_seconds)
        self.thread = threading.Thread(target=self._read, args=arguments, daemon=True, name="live-reader")
        self.thread.start()

    def _read(self, source: str, config: StreamConfig, num_frames: int, stall_seconds: float) -> None:
        last: object = _END
        try:
            frames = live_frames(source, stall_seconds)
            for bounds, clip in windows_of(frames, config.window_seconds, config.stride_seconds, num_frames, source):
                self.windows += 1
                try:
                    self.queue.put_nowait((bounds, clip, time.monotonic()))
                except queue.Full:
                    self.dropped += 1
        except Exception as error:  # handed to the consumer, which raises it
            last = error
        finally:
            self.done.set()  # the source is read; the end waits for room in the queue
            self.queue.put(last)

    def batches(self, size: int) -> Iterator[list[tuple[tuple[float, float], np.ndarray, float]]]:
        """Lists of (bounds, frames, arrival): every window waiting, up to `size`, at least one."""
        while True:
            item = self.queue.get()
            batch = []
            while True:
                if item is _END:
                    if batch:
                        yield batch
                    return
                if isinstance(item, Exception):
                    raise item
                batch.append(item)
                if len(batch) == size:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
            yield batch


def caption_live(
    model: InferenceModel,
    source: str,
    config: StreamConfig,
    on_caption: Callable[[TimedCaption], None] | None = None,
    queue_size: int = 8,
    stall_seconds: float = 5.0,
) -> LiveResult:
    """Caption a live source with the online change detector (`config.segmenter` must be "online")."""
    if config.segmenter != "online":
        raise ValueError("a live source is captioned with the online segmenter (no look-ahead)")
    windows = LiveWindows(source, config, model.num_frames, queue_size, stall_seconds)
    latencies: list[float] = []
    arrival: list[float | None] = [None]  # of the window last handed to the segmenter; None once the source ended

    def embedded() -> Iterator[tuple[tuple[float, float], np.ndarray]]:
        for batch in windows.batches(config.batch_size):
            with model.inference():
                predicted = embedding_array(model.encode_video(np.stack([clip for _, clip, _ in batch])))
            for (bounds, _, came), row in zip(batch, predicted):
                arrival[0] = came
                yield bounds, row
        arrival[0] = None  # the last caption closes the stream, not a change of meaning: no latency

    def caption(timed: TimedCaption) -> None:
        if arrival[0] is not None:
            latencies.append(time.monotonic() - arrival[0])
        if on_caption:
            on_caption(timed)

    result = caption_embedded(model, embedded(), config, caption, keep_history=False)
    return LiveResult(result, windows.windows, windows.dropped, latencies)
