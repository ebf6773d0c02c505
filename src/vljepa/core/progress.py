"""Rich progress bars and console output shared by every long-running command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextmanager
def progress_bar(
    description: str, total: int | None, enabled: bool = True, fields: str = ""
) -> Iterator[Callable[..., None]]:
    """Yield `advance(n=1, **fields)`; `fields` is a format string shown after the bar (e.g. "loss {loss:.3f}");
    `total` None: a count without an end (a stream of unknown length)."""
    if not enabled:
        yield lambda n=1, **_: None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    if fields:
        columns.append(TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, **values) -> None:
            status = fields.format(**values) if fields and values else None
            progress.update(task, advance=n, **({"status": status} if status is not None else {}))

        yield advance
