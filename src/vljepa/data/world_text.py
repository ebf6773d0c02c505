"""The language of the built-in world: colours, shapes, actions, and the ways of saying each.

An `Event` (colour, shape, action, and the other colour/shape where the action needs one) is one
meaning. Captions are sentence templates x predicate phrasings. Every action has several phrasings,
split into `seen` (train/val/test captions) and `heldout` (only in `test_heldout.jsonl`), and so do
the sentence templates and the class names: the held-out forms measure whether a model learned
meanings or memorised strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 245),
    "yellow": (240, 225, 40),
    "purple": (165, 60, 225),
    "orange": (250, 140, 20),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle", "cross")
NUMBER_WORDS = ("zero", "one", "two", "three", "four")
DIRECTIONS = ("left", "right", "up", "down")


@dataclass(frozen=True)
class Action:
    key: str
    label: str  # class name used in train/val/test
    heldout_label: str  # class name only in test_heldout.jsonl
    answer: str  # answer to "what happens to the X?" ("it " + what the shape does)
    seen: tuple[str, ...]  # predicates for captions; {c2}/{s2}: the other colour/shape
    heldout: tuple[str, ...]  # predicates kept for the generalisation test

    @property
    def role(self) -> str:
        """What the shape does, to name it by its role: "the shape that grows"."""
        return self.answer.removeprefix("it ")


ACTIONS: tuple[Action, ...] = (
    Action(
        "move_left",
        "moving left",
        "travelling leftward",
        "it moves left",
        ("slides to the left", "moves leftward", "travels left"),
        ("drifts to the left", "heads left"),
    ),
    Action(
        "move_right",
        "moving right",
        "travelling rightward",
        "it moves right",
        ("slides to the right", "moves rightward", "travels right"),
        ("drifts to the right", "heads right"),
    ),
    Action(
        "move_up",
        "moving up",
        "travelling upward",
        "it moves up",
        ("slides upward", "moves up", "travels to the top"),
        ("rises", "climbs upward"),
    ),
    Action(
        "move_down",
        "moving down",
        "travelling downward",
        "it moves down",
        ("slides downward", "moves down", "travels to the bottom"),
        ("sinks", "drops downward"),
    ),
    Action(
        "grow",
        "growing",
        "getting larger",
        "it grows",
        ("grows", "gets bigger", "expands"),
        ("swells", "increases in size"),
    ),
    Action(
        "shrink",
        "shrinking",
        "getting tinier",
        "it shrinks",
        ("shrinks", "gets smaller", "contracts"),
        ("dwindles", "decreases in size"),
    ),
    Action(
        "change_colour",
        "changing colour",
        "switching hue",
        "it changes colour",
        ("turns {c2}", "changes colour to {c2}", "becomes {c2}"),
        ("switches to {c2}", "is recoloured {c2}"),
    ),
    Action(
        "appear",
        "appearing",
        "coming into view",
        "it appears",
        ("appears", "shows up", "pops into view"),
        ("materialises", "emerges out of nowhere"),
    ),
    Action(
        "disappear",
        "disappearing",
        "going out of sight",
        "it disappears",
        ("disappears", "vanishes", "fades out of view"),
        ("leaves the scene", "goes out of sight"),
    ),
    Action(
        "stay_still",
        "staying still",
        "remaining motionless",
        "it stays still",
        ("stays still", "does not move", "remains in place"),
        ("sits motionless", "stays put"),
    ),
    Action(
        "bounce",
        "bouncing off a wall",
        "rebounding from an edge",
        "it bounces off a wall",
        ("bounces off a wall", "hits the wall and comes back", "rebounds off the edge"),
        ("ricochets off a wall", "springs back from the border"),
    ),
    Action(
        "collide",
        "colliding",
        "crashing together",
        "it collides with another shape",
        ("collides with the {c2} {s2}", "crashes into the {c2} {s2}", "bumps into the {c2} {s2}"),
        ("smashes into the {c2} {s2}", "runs into the {c2} {s2}"),
    ),
)
ACTION_BY_KEY = {a.key: a for a in ACTIONS}

# {subject}: "red circle"; {a_subject}: "a red circle" / "an orange circle"
SEEN_TEMPLATES = (
    "the {subject} {predicate}",
    "{a_subject} {predicate}",
    "in this clip the {subject} {predicate}",
    "here the {subject} {predicate}",
)
HELDOUT_TEMPLATES = ("look, the {subject} {predicate}", "this video shows how the {subject} {predicate}")

# Question phrasings per VQA type ({name}: a shape named by colour and shape, or by its role).
QUESTIONS: dict[str, tuple[str, ...]] = {
    "colour": ("what colour is the {name}?", "which colour does the {name} have?"),
    "shape": ("what shape is the {name}?", "which shape is the {name}?"),
    "count": ("how many shapes are shown in the clip?", "how many different shapes can be seen?"),
    "direction": ("which way does the {name} move?", "in which direction does the {name} go?"),
    "exists": ("is there {a_name}?", "does the video show {a_name}?"),
    "what_happened": ("what happens to the {name}?", "what does the {name} do?"),
}


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


@dataclass(frozen=True)
class Event:
    """One meaning: a shape doing an action (to or with another colour/shape where the action needs it)."""

    colour: str
    shape: str
    action: str
    other_colour: str | None = None  # the new colour (change colour) or the partner's colour (collide)
    other_shape: str | None = None  # the partner's shape (collide)

    @property
    def meaning(self) -> str:
        """Canonical string shared by every paraphrase, e.g. "red circle move left"; a collision's two
        shapes are sorted, so "A collides with B" and "B collides with A" mean the same."""
        subject, action = f"{self.colour} {self.shape}", self.action.replace("_", " ")
        if self.action == "change_colour":
            return f"{subject} {action} {self.other_colour}"
        if self.action == "collide":
            first, second = sorted([subject, f"{self.other_colour} {self.other_shape}"])
            return f"{first} {action} {second}"
        return f"{subject} {action}"

    def paraphrases(self, heldout: bool = False) -> list[list[str]]:
        """Captions grouped by predicate phrasing (one inner list per phrasing, one entry per template)."""
        spec = ACTION_BY_KEY[self.action]
        templates = HELDOUT_TEMPLATES if heldout else SEEN_TEMPLATES
        subject = f"{self.colour} {self.shape}"
        groups = []
        for predicate in spec.heldout if heldout else spec.seen:
            predicate = predicate.format(c2=self.other_colour, s2=self.other_shape)
            groups.append(
                [t.format(subject=subject, a_subject=with_article(subject), predicate=predicate) for t in templates]
            )
        return groups


def heldout_phrases() -> list[str]:
    """The held-out templates, predicates and class names (their fixed words): never in training text."""
    predicates = [p.split(" {")[0] for a in ACTIONS for p in a.heldout]
    templates = [t.split(" {")[0] for t in HELDOUT_TEMPLATES]
    return predicates + templates + [a.heldout_label for a in ACTIONS]


def _predicate_patterns() -> list[tuple[re.Pattern, str]]:
    colour, shape = "|".join(COLOURS), "|".join(SHAPES)
    patterns = []
    for action in ACTIONS:
        for predicate in (*action.seen, *action.heldout):
            body = re.escape(predicate).replace(r"\{c2\}", f"(?P<c2>{colour})").replace(r"\{s2\}", f"(?P<s2>{shape})")
            patterns.append((re.compile(rf"\b(?P<colour>{colour}) (?P<shape>{shape}) {body}$"), action.key))
    return patterns


PREDICATE_PATTERNS = _predicate_patterns()


def caption_event(caption: str) -> Event | None:
    """The event a caption in the world's language states ("... the red circle slides to the left" -> red
    circle, move_left), read from its subject and predicate; None when it states none (a broken decode)."""
    text = " ".join(caption.lower().split()).rstrip(".")
    for pattern, action in PREDICATE_PATTERNS:
        found = pattern.search(text)
        if found:
            groups = found.groupdict()
            return Event(groups["colour"], groups["shape"], action, groups.get("c2"), groups.get("s2"))
    return None
