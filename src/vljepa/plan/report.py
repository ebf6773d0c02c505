"""`vljepa plan`'s output: a table a person reads, and the same as JSON, each with the plan's assumptions."""

from __future__ import annotations

import dataclasses

from rich.table import Table

from .planner import EFFICIENT_MICRO_BATCH, Hardware, Lengths, StagePlan


def assumptions(hardware: Hardware, lengths: Lengths, bf16: bool) -> list[str]:
    """The plan's assumptions; the first names the GPUs."""
    return [
        f"{hardware.ranks} GPU(s) of {hardware.memory / 1e9:g} GB",
        f"{hardware.margin:.0%} of each GPU's memory kept free; {'bf16 autocast' if bf16 else 'fp32'} over fp32 "
        "weights; AdamW (foreach) with fp32 moments",
        f"target texts of {lengths.text_tokens} tokens; queries of {lengths.query_tokens} tokens in stages with "
        "questions or labels; X-encoder tokens read from the feature cache unless the config says features: online",
        f"micro-batches below {EFFICIENT_MICRO_BATCH} count as too small: then checkpointing, then FSDP, are tried",
        f"time: {hardware.peak_flops / 1e12:g} TFLOP/s per GPU at {hardware.utilisation:.0%} utilisation, on the "
        "matmul and attention FLOPs of `vljepa info`",
    ]


def _gb(count: int) -> str:
    return f"{count / 1e9:,.1f} GB"


def plan_table(title: str, plans: list[StagePlan], notes: list[str]) -> Table:
    table = Table(title=title, caption="\n".join(notes))
    for column in (
        "stage",
        "frames",
        "batch",
        "per GPU",
        "micro-batch",
        "chunks",
        "checkpointing",
        "sharding",
        "peak / GPU",
        "GPU-hours",
        "days",
        "YAML's micro-batch",
    ):
        table.add_column(column, justify="left" if column in ("stage", "sharding") else "right")
    for plan in plans:
        chosen = plan.chosen
        configured = (
            f"{plan.configured_micro_batch}: {'fits' if plan.configured_fits else 'does not fit'}"
            if plan.configured_micro_batch
            else ""
        )
        table.add_row(
            plan.name,
            str(plan.frames),
            f"{plan.global_batch:,}",
            f"{plan.local_rows:,}",
            str(chosen.micro_batch) if chosen else "-",
            str(plan.chunks) if chosen else "-",
            ("yes" if chosen.checkpointing else "no") if chosen else "-",
            ("fsdp" if chosen.fsdp else "none") if chosen else "-",
            _gb(chosen.peak) if chosen else "does not fit",
            f"{plan.gpu_hours:,.0f}",
            f"{plan.wall_hours / 24:,.1f}",
            configured,
        )
        if plan.advice:
            table.add_row("", f"[yellow]{plan.advice}[/yellow]", *[""] * 10)
    return table


def plan_json(plans: list[StagePlan], notes: list[str]) -> dict:
    return {
        "assumptions": notes,
        "stages": [
            {**dataclasses.asdict(plan), "chunks": plan.chunks, "wall_hours": plan.wall_hours} for plan in plans
        ],
    }
