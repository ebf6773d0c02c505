"""Dynamic batching: one thread runs the model; concurrent predictions are gathered into one forward pass.

Ours: requests put work on a bounded queue and wait on a `concurrent.futures.Future`. The model thread
takes the first item and, for the two batchable kinds (a clip's prediction under its query; a list of
texts' embeddings), gathers the items of the same kind that arrive until `max_batch` or until `max_wait_ms`
have passed since the first arrived (items of the other kinds met meanwhile keep their order and run
next, so a request's clip and its labels each join their own batch); one forward pass serves the batch
and each future gets its own rows.
Anything else (decoding, a search, a stream job's window batch) is a `call` run alone, in arrival order.
Why: on a CPU one forward pass already uses every core, so concurrency only helps by amortising the
per-call overhead (Python, small matrix products) over a batch; the wait is bounded so a lone request
pays at most a few ms. With batching off every item runs alone (the comparison in
benchmarks/serve_load.py). A full queue refuses at once (`Busy`) instead of letting latency grow.
A cancelled future (its request timed out) is skipped. Text embeddings are kept (the last
`TEXT_CACHE_SIZE` texts): labels and options repeat from request to request, and the Y-encoder is fixed
at inference, so only texts not seen before are encoded.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from ..deploy.runtime import OnnxVLJepa
from ..model.vljepa import VLJepa
from ..tasks.stream_captioner import embedding_array
from .settings import Batching

TEXT_CACHE_SIZE = 4096  # texts whose embeddings are kept (labels and options repeat across requests)


class Busy(Exception):
    """The model's queue is full."""


@dataclass
class _Item:
    kind: str  # "video" | "text" | "call"
    payload: Any
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.perf_counter)


class ModelWorker:
    """The one thread that runs `model`; `start()` it, `stop()` it."""

    def __init__(self, model: VLJepa | OnnxVLJepa, batching: Batching, max_queue: int):
        self.model = model
        self.batching = batching
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._held: deque[_Item | None] = deque()  # taken while gathering a batch of another kind
        self._thread = threading.Thread(target=self._run, name="vljepa-model", daemon=True)
        self._texts: OrderedDict[str, torch.Tensor] = OrderedDict()  # text -> embedding, least recent first
        self.batches = 0  # forward passes of batchable items, for /info
        self.batched_items = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def embed_video(self, frames: torch.Tensor, query: str | None) -> Future:
        """Future of the normalised prediction (shared_dim,) for frames (T, H, W, 3) under `query`."""
        return self._submit(_Item("video", (frames, query)))

    def embed_texts(self, texts: list[str]) -> Future:
        """Future of the normalised Y-encoder embeddings (len(texts), shared_dim)."""
        return self._submit(_Item("text", list(texts)))

    def call(self, function: Callable[[VLJepa], Any]) -> Future:
        """Future of `function(model)`, run alone in the model thread under `model.inference()`."""
        return self._submit(_Item("call", function))

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def _submit(self, item: _Item) -> Future:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise Busy(f"the model has {self._queue.maxsize} requests waiting") from None
        return item.future

    def _next(self, timeout: float | None) -> _Item | None:
        if self._held:
            return self._held.popleft()
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _gather(self, first: _Item) -> list[_Item]:
        """`first` and the items of its kind that arrive within its wait; others keep their order, after it."""
        batch = [first]
        if first.kind == "call" or not self.batching.enabled:
            return batch
        deadline = first.arrived + self.batching.max_wait_ms / 1000
        others: list[_Item | None] = []
        while len(batch) < self.batching.max_batch:
            try:
                item = self._next(deadline - time.perf_counter())
            except queue.Empty:
                break
            if item is None:  # stop: after this batch and the items before it
                others.append(item)
                break
            (batch if item.kind == first.kind else others).append(item)
        self._held.extendleft(reversed(others))
        return batch

    def _run(self) -> None:
        while True:
            first = self._next(None)
            if first is None:
                return
            batch = [item for item in self._gather(first) if item.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                with self.model.inference():
                    results = self._compute(batch)
            except BaseException as error:  # handed to every waiting request; the thread lives on
                for item in batch:
                    item.future.set_exception(error)
                continue
            for item, result in zip(batch, results):
                item.future.set_result(result)

    def _compute(self, batch: list[_Item]) -> list[Any]:
        kind = batch[0].kind
        if kind == "call":
            return [batch[0].payload(self.model)]
        self.batches += 1
        self.batched_items += len(batch)
        if kind == "video":
            clips, queries = zip(*(item.payload for item in batch))
            # a list, not a stacked tensor: clips may differ in size; each is preprocessed to the encoder's
            return list(_rows(self.model.encode_video(list(clips), list(queries))))  # type: ignore[arg-type]
        wanted = [text for item in batch for text in item.payload]
        missing = list(dict.fromkeys(text for text in wanted if text not in self._texts))
        if missing:
            self._texts.update(zip(missing, _rows(self.model.encode_text(missing))))
        rows = torch.stack([self._texts[text] for text in wanted])
        for text in wanted:
            self._texts.move_to_end(text)
        while len(self._texts) > TEXT_CACHE_SIZE:
            self._texts.popitem(last=False)
        return list(rows.split([len(item.payload) for item in batch]))


def _rows(embeddings) -> torch.Tensor:
    """A model's embeddings as a float32 CPU tensor: PyTorch's, or an ONNX export's arrays."""
    return torch.from_numpy(embedding_array(embeddings))
