"""Sizing the demo to a wall-clock budget: the fraction of the recipe that fits, and the refusal when too little does."""

from __future__ import annotations

import time

import pytest

from vljepa.demo.budget import MIN_FRACTION, BudgetTooSmall, Part, TimeBudget, scaled_steps


def budget_with(seconds_left: float, minutes: float = 10.0) -> TimeBudget:
    """A budget started so that exactly `seconds_left` remain for training (after the reserve)."""
    budget = TimeBudget(minutes)
    budget.started = time.perf_counter() - (60 * minutes - budget.reserve_s - seconds_left)
    return budget


def test_the_fraction_is_the_share_of_the_recipe_that_fits_and_never_more_than_all_of_it():
    parts = [Part("pretrain", 100, 1.0), Part("sft", 300, 1.0)]  # 400 s for the whole recipe
    assert budget_with(200).fraction(parts) == pytest.approx(0.5, abs=0.01)
    assert budget_with(4000).fraction(parts) == 1.0
    assert budget_with(-5).fraction(parts) == 0.0


def test_scaled_steps_keep_at_least_one_step():
    assert scaled_steps(640, 0.5) == 320 and scaled_steps(3, 0.01) == 1


def test_the_reserve_for_evaluation_grows_with_the_budget_but_never_below_its_minimum():
    assert TimeBudget(1).reserve_s == 45.0 and TimeBudget(60).reserve_s == pytest.approx(270.0)


def test_a_budget_under_the_minimum_share_names_the_minutes_it_needs():
    parts = [Part("pretrain", 640, 1.0), Part("sft", 2560, 1.0)]
    with pytest.raises(BudgetTooSmall) as error:
        budget_with(0.5 * MIN_FRACTION * 3200).check_feasible(parts)
    message = str(error.value)
    assert "pretrain 1.00 s/step" in message and "vljepa demo --minutes" in message and "whole recipe" in message
    assert budget_with(1.5 * MIN_FRACTION * 3200).check_feasible(parts) == pytest.approx(1.5 * MIN_FRACTION, abs=0.01)


def test_a_part_must_end_at_its_share_of_the_time_left_slack_included():
    parts = [Part("sft", 100, 1.0), Part("Y-decoder", 300, 1.0)]  # a quarter of the sized work
    now = time.perf_counter()
    assert budget_with(200).deadline(parts) - now == pytest.approx(50, abs=1)  # fits exactly: its planned time
    assert budget_with(800).deadline(parts) - now == pytest.approx(200, abs=1)  # room to spare: a quarter of it
    assert budget_with(-5).deadline(parts) - now == pytest.approx(0, abs=1)  # overrun: ends after one step
