"""Do a stream's decoded captions name the right thing? Scored against the world's timed reference segments.

Paper: selective decoding is scored by CIDEr, each ground-truth annotation matched to the temporally
nearest decoded caption. Ours, on the built-in world, the same matching and two exact readings of the
matched caption, since a caption can score CIDEr while naming the wrong shape: `form_and_colour`, the
fraction of reference segments whose caption's subject is a shape of the reference event in its colour
(either shape of a collision), and `meaning`, the fraction whose caption states the reference's event.
A caption outside the world's language (a broken decode) counts as wrong for both.
"""

from __future__ import annotations

from ..data.world_text import Event, caption_event


def subjects(event: Event) -> set[tuple[str, str]]:
    """The (colour, shape) pairs a caption of `event` may name as its subject."""
    named = {(event.colour, event.shape)}
    if event.action == "collide":
        named.add((event.other_colour, event.other_shape))
    return named


def stream_naming(captions: list[dict], reference: list[dict]) -> dict:
    """`captions`: decoded {"time", "text"}; `reference`: {"start", "end", "caption"} segments written in the
    world's language. Each reference segment is matched to the caption nearest its midpoint."""
    form_and_colour = meaning = 0
    for segment in reference:
        expected = caption_event(segment["caption"])
        if expected is None:
            raise ValueError(f"reference caption {segment['caption']!r} is not in the world's language")
        middle = (segment["start"] + segment["end"]) / 2
        nearest = min(captions, key=lambda c: abs(c["time"] - middle))
        stated = caption_event(nearest["text"])
        if stated is not None:
            form_and_colour += (stated.colour, stated.shape) in subjects(expected)
            meaning += stated.meaning == expected.meaning
    count = len(reference)
    return {"form_and_colour": form_and_colour / count, "meaning": meaning / count, "reference_segments": count}
