"""The ablation benchmark's rows: every row's overrides make a valid training config at a real budget."""

from __future__ import annotations

from ablations import RECIPE, ablation_rows, budget_overrides

from vljepa.config import load_train_config


def test_every_ablation_row_is_a_valid_config():
    budget = budget_overrides(0.25, None)
    for group in ablation_rows(budget).values():
        for row in group:
            load_train_config(RECIPE, [*budget[1], *row.overrides])


def test_without_stage_1_gives_its_steps_to_sft():
    (pretrain_steps, sft_steps), overrides = budget = budget_overrides(0.25, None)
    (row,) = [row for row in ablation_rows(budget)["pretraining"] if not row.baseline]
    with_stage_1 = load_train_config(RECIPE, overrides)
    (sft,) = load_train_config(RECIPE, [*overrides, *row.overrides]).stages
    assert sft.steps == pretrain_steps + sft_steps
    assert sft.mixture == with_stage_1.stages[1].mixture and sft.name == with_stage_1.stages[1].name
    assert sft.warmup_steps == with_stage_1.stages[1].warmup_steps
