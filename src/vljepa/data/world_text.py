"""The language of the built-in world: colours, shapes, actions, and the ways of saying each.

Every action has several phrasings, split into `seen` (used in train/val/test captions) and `heldout`
(used only in `test_heldout.jsonl`), and so do the sentence templates and the class names: the
held-out forms measure whether the model learned meanings or memorised strings.
"""

from __future__ import annotations

from dataclasses import dataclass

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 245), "yellow": (240, 225, 40),
    "purple": (165, 60, 225), "orange": (250, 140, 20), "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle", "cross")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")
DIRECTIONS = ("left", "right", "up", "down")


@dataclass(frozen=True)
class Action:
    key: str
    label: str  # class name in training
    heldout_label: str  # class name never seen in training
    answer: str  # answer to "what happens to the X?"
    seen: tuple[str, ...]  # predicate phrasings used in training captions ({c2}/{s2}: the other colour/shape)
    heldout: tuple[str, ...]  # predicate phrasings kept for the generalisation test


ACTIONS: tuple[Action, ...] = (
    Action("move_left", "moving left", "travelling leftward", "it moves left",
           ("slides to the left", "moves leftward", "travels left"), ("drifts to the left", "heads left")),
    Action("move_right", "moving right", "travelling rightward", "it moves right",
           ("slides to the right", "moves rightward", "travels right"), ("drifts to the right", "heads right")),
    Action("move_up", "moving up", "travelling upward", "it moves up",
           ("slides upward", "moves up", "travels to the top"), ("rises", "climbs upward")),
    Action("move_down", "moving down", "travelling downward", "it moves down",
           ("slides downward", "moves down", "travels to the bottom"), ("sinks", "drops downward")),
    Action("grow", "growing", "getting larger", "it grows",
           ("grows", "gets bigger", "expands"), ("swells", "increases in size")),
    Action("shrink", "shrinking", "getting tinier", "it shrinks",
           ("shrinks", "gets smaller", "contracts"), ("dwindles", "decreases in size")),
    Action("change_colour", "changing colour", "switching hue", "it changes colour",
           ("turns {c2}", "changes colour to {c2}", "becomes {c2}"), ("switches to {c2}", "is recoloured {c2}")),
    Action("appear", "appearing", "coming into view", "it appears",
           ("appears", "shows up", "pops into view"), ("materialises", "emerges out of nowhere")),
    Action("disappear", "disappearing", "going out of sight", "it disappears",
           ("disappears", "vanishes", "fades out of view"), ("leaves the scene", "goes out of sight")),
    Action("stay_still", "staying still", "remaining motionless", "it stays still",
           ("stays still", "does not move", "remains in place"), ("sits motionless", "stays put")),
    Action("bounce", "bouncing off a wall", "rebounding from an edge", "it bounces off a wall",
           ("bounces off a wall", "hits the wall and comes back", "rebounds off the edge"),
           ("ricochets off a wall", "springs back from the border")),
    Action("collide", "colliding", "crashing together", "it collides with another shape",
           ("collides with the {c2} {s2}", "crashes into the {c2} {s2}", "bumps into the {c2} {s2}"),
           ("smashes into the {c2} {s2}", "runs into the {c2} {s2}")),
)
ACTION_BY_KEY = {a.key: a for a in ACTIONS}

SEEN_TEMPLATES = ("the {subject} {predicate}", "a {subject} {predicate}", "in this clip the {subject} {predicate}")
HELDOUT_TEMPLATES = ("look, the {subject} {predicate}", "this video shows how the {subject} {predicate}")


def meaning(colour: str, shape: str, action: str, other_colour: str | None = None, other_shape: str | None = None) -> str:
    """A canonical string shared by every paraphrase of one event."""
    parts = [colour, shape, action]
    if action == "change_colour":
        parts.append(other_colour)
    if action == "collide":
        parts += [other_colour, other_shape]
    return " ".join(parts)


def paraphrases(colour: str, shape: str, action: str, heldout: bool = False,
                other_colour: str | None = None, other_shape: str | None = None) -> list[str]:
    """Every caption of one event in the seen (or held-out) forms: templates x predicate phrasings."""
    spec = ACTION_BY_KEY[action]
    templates = HELDOUT_TEMPLATES if heldout else SEEN_TEMPLATES
    predicates = spec.heldout if heldout else spec.seen
    subject = f"{colour} {shape}"
    return [template.format(subject=subject, predicate=predicate.format(c2=other_colour, s2=other_shape))
            for predicate in predicates for template in templates]


def heldout_phrases() -> list[str]:
    """Words and phrases that must never appear in training text."""
    phrases = [p.split(" {")[0] for a in ACTIONS for p in a.heldout]
    return phrases + [t.split(" {")[0] for t in HELDOUT_TEMPLATES] + [a.heldout_label for a in ACTIONS]
