"""Fitting the demo into a wall-clock budget on whatever machine runs it.

The recipe's step counts (both training stages, the Y-decoder's two phases) are the most the demo does.
After the world is generated and its clips encoded, the time of one step of each stage and of the
Y-decoder is measured on this machine (`Trainer.measure_step_seconds`, `measure_decoder_step_seconds`),
and every step count is scaled by one fraction so that the demo ends within the budget, the recipe's
proportions kept. Because a machine's speed drifts from minute to minute, the plan is made again before
stage 2 and before the Y-decoder from the time actually left and a fresh measurement of its step, and a
training stage that runs slower than measured is ended at its share of the time, so that the parts after
it keep theirs (the Y-decoder most: it is last). When even
`MIN_FRACTION` of the recipe does not fit, the demo stops before training and says how long it needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import VljepaError

MIN_FRACTION = 0.2  # below this share of the recipe's samples the figures say little about the method
RESERVE_FRACTION = (
    0.075  # of the budget, kept for the Y-decoder's set-up, evaluation, the stream and the report (30-40 s here)
)
RESERVE_MIN_S = 45.0


class BudgetTooSmall(VljepaError, RuntimeError):
    """The machine cannot train a meaningful share of the recipe within the budget."""


@dataclass
class Part:
    """A sized piece of work: `steps` at most (the recipe's), `seconds_per_step` as measured."""

    name: str
    steps: int
    seconds_per_step: float

    @property
    def seconds(self) -> float:
        return self.steps * self.seconds_per_step


def scaled_steps(steps: int, fraction: float) -> int:
    return max(1, round(steps * fraction))


@dataclass
class TimeBudget:
    """A deadline `minutes` from `started` (time.perf_counter), of which the reserve is kept for after training."""

    minutes: float
    started: float = field(default_factory=time.perf_counter)

    @property
    def reserve_s(self) -> float:
        return max(RESERVE_MIN_S, RESERVE_FRACTION * 60 * self.minutes)

    def seconds_left(self) -> float:
        return self.started + 60 * self.minutes - self.reserve_s - time.perf_counter()

    def fraction(self, parts: list[Part]) -> float:
        """The largest share (at most 1) of `parts` that fits in the time left."""
        needed = sum(part.seconds for part in parts)
        return 1.0 if needed <= 0 else max(0.0, min(1.0, self.seconds_left() / needed))

    def deadline(self, parts: list[Part]) -> float:
        """When the first of `parts` (sized and about to start) must end so that the others keep their share
        of the time left (time.perf_counter): its share of that time, in proportion to the parts' times."""
        total = sum(part.seconds for part in parts)
        share = parts[0].seconds / total if total > 0 else 1.0
        return time.perf_counter() + max(0.0, self.seconds_left()) * share

    def minutes_needed(self, parts: list[Part], fraction: float = 1.0) -> float:
        """The run's wall minutes if `fraction` of `parts` were trained from now on."""
        return (time.perf_counter() - self.started + fraction * sum(p.seconds for p in parts) + self.reserve_s) / 60

    def check_feasible(self, parts: list[Part]) -> float:
        """The fraction of the recipe that fits; `BudgetTooSmall` (with the minutes needed) below `MIN_FRACTION`."""
        fraction = self.fraction(parts)
        if fraction < MIN_FRACTION:
            at_least, full = self.minutes_needed(parts, MIN_FRACTION), self.minutes_needed(parts)
            raise BudgetTooSmall(
                f"this machine fits only {fraction:.0%} of the demo's training in {self.minutes:g} minutes "
                f"({', '.join(f'{p.name} {p.seconds_per_step:.2f} s/step' for p in parts)}); at least "
                f"{MIN_FRACTION:.0%} is needed for figures that mean something. Run `vljepa demo --minutes "
                f"{max(at_least, self.minutes + 1):.0f}` (the whole recipe: about {full:.0f} minutes)."
            )
        return fraction
