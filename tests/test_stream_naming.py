"""Reading world captions back into events, and the stream's naming figure built on it."""

from __future__ import annotations

import pytest

from vljepa.data.world_text import ACTIONS, COLOURS, SHAPES, Event, caption_event
from vljepa.eval.stream_naming import stream_naming


def test_every_world_caption_reads_back_as_its_event():
    colours, shapes = list(COLOURS), list(SHAPES)
    for index, action in enumerate(ACTIONS):
        others = (colours[index % 7 - 1], shapes[index % 4 - 1]) if action.key == "collide" else (None, None)
        if action.key == "change_colour":
            others = (colours[index % 7 - 2], None)
        event = Event(colours[index % 7], shapes[index % 4], action.key, *others)
        for heldout in (False, True):
            for caption in (c for group in event.paraphrases(heldout) for c in group):
                assert caption_event(caption) == event, caption
    for broken in ("a a a a a red triangle triangle", "the red circle", "", "the red circle flies"):
        assert caption_event(broken) is None


def test_each_reference_segment_is_read_from_the_caption_nearest_in_time():
    reference = [
        {"start": 0.0, "end": 4.0, "caption": "the white triangle grows"},
        {"start": 4.0, "end": 8.0, "caption": "a red circle crashes into the blue square"},
        {"start": 8.0, "end": 12.0, "caption": "here the green cross slides to the left"},
    ]
    captions = [
        {"time": 1.5, "text": "a white triangle expands"},  # right form, colour and event
        {"time": 6.5, "text": "the blue square bumps into the red circle"},  # the partner named first: same event
        {"time": 9.0, "text": "the green cross slides to the right"},  # right thing, wrong event
        {"time": 30.0, "text": "a a a red triangle triangle"},  # nearest to nothing
    ]
    assert stream_naming(captions, reference) == {
        "form_and_colour": 1.0,
        "meaning": pytest.approx(2 / 3),
        "reference_segments": 3,
    }
    captions[0]["text"] = "a a white white triangle"
    assert stream_naming(captions, reference)["form_and_colour"] == pytest.approx(2 / 3)
