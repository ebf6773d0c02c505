"""The model thread's dynamic batching, on a recording stand-in for the model (no HTTP, no weights)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError
from contextlib import contextmanager

import pytest
import torch

from vljepa.serve.batching import Busy, ModelWorker
from vljepa.serve.settings import Batching


class RecordingModel:
    """Answers a clip with its mean pixel (plus the query's length) and a text with its length; records passes."""

    def __init__(self):
        self.passes: list[tuple[str, int]] = []

    @contextmanager
    def inference(self):
        yield self

    def encode_video(self, clips, queries):
        self.passes.append(("video", len(clips)))
        return torch.stack([clip.float().mean() + len(query or "") for clip, query in zip(clips, queries)])[:, None]

    def encode_text(self, texts):
        self.passes.append(("text", len(texts)))
        return torch.tensor([[float(len(text))] for text in texts])


@contextmanager
def worker(batching: Batching, max_queue: int = 64):
    model = RecordingModel()
    running = ModelWorker(model, batching, max_queue)  # type: ignore[arg-type]
    running.start()
    try:
        yield running, model
    finally:
        running.stop()


@contextmanager
def held(running: ModelWorker):
    """Everything submitted inside waits until the block ends (the model thread is busy)."""
    gate = threading.Event()
    running.call(lambda model: gate.wait())
    while running.queued:
        time.sleep(0.001)
    yield
    gate.set()


def clip(value: int) -> torch.Tensor:
    return torch.full((2, 4, 4, 3), value, dtype=torch.uint8)


def test_waiting_predictions_share_one_forward_pass_and_each_gets_its_row():
    with worker(Batching(max_batch=4)) as (running, model):
        with held(running):
            videos = [running.embed_video(clip(v), "ab" if v % 2 else None) for v in range(6)]
            texts = [running.embed_texts(["a", "bcd"]), running.embed_texts(["ef"])]
            after = running.call(lambda model: "after")
        assert [float(f.result()[0]) for f in videos] == [0, 3, 2, 5, 4, 7]
        assert [f.result().squeeze(1).tolist() for f in texts] == [[1.0, 3.0], [2.0]]
        assert after.result() == "after"
        # max_batch 4: the first four clips, then the next two, then both texts' three strings
        assert model.passes == [("video", 4), ("video", 2), ("text", 3)]
        assert (running.batches, running.batched_items) == (3, 8)


def test_a_request_s_clip_and_labels_each_join_their_own_batch():
    with worker(Batching(max_batch=16)) as (running, model):
        with held(running):
            pairs = [(running.embed_video(clip(v), None), running.embed_texts(["x"] * (v + 1))) for v in range(3)]
        assert [(float(a.result()[0]), len(b.result())) for a, b in pairs] == [(0, 1), (1, 2), (2, 3)]
        assert model.passes == [("video", 3), ("text", 1)]  # "x" once: texts are encoded once each


def test_only_texts_not_seen_before_are_encoded():
    with worker(Batching()) as (running, model):
        assert running.embed_texts(["ab", "c"]).result().squeeze(1).tolist() == [2.0, 1.0]
        assert running.embed_texts(["c", "def", "ab", "def"]).result().squeeze(1).tolist() == [1.0, 3.0, 2.0, 3.0]
        assert model.passes == [("text", 2), ("text", 1)]


def test_without_batching_every_prediction_runs_alone():
    with worker(Batching(enabled=False)) as (running, model):
        with held(running):
            futures = [running.embed_video(clip(v), None) for v in range(3)]
        assert [float(f.result()[0]) for f in futures] == [0, 1, 2]
        assert model.passes == [("video", 1)] * 3


def test_a_full_queue_refuses_a_cancelled_item_is_skipped_and_a_failure_reaches_only_its_batch():
    with worker(Batching(), max_queue=2) as (running, model):
        with held(running):
            cancelled = running.embed_video(clip(1), None)
            failing = running.call(lambda model: 1 / 0)
            with pytest.raises(Busy):
                running.embed_texts(["a"])
            assert cancelled.cancel()
        with pytest.raises(ZeroDivisionError):
            failing.result()
        with pytest.raises(CancelledError):
            cancelled.result()
        assert running.embed_texts(["abc"]).result().tolist() == [[3.0]]
        assert model.passes == [("text", 1)]
