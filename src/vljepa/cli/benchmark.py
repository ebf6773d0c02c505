"""`vljepa benchmark`: the paper's benchmarks, one command each (import, run, table, list).

Registered in `main.py` as a sub-app, so its errors get the same one-line treatment (exit code 2).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import VljepaError
from .support import existing_file, existing_folder, load_model

app = typer.Typer(no_args_is_help=True, help="The paper's benchmarks: import their files, run, compare with the paper.")

NameArgument = Annotated[str, typer.Argument(help="Benchmark name (see `vljepa benchmark list`).")]
RootOption = Annotated[Path, typer.Option(help="The dataset's folder, laid out as its public release (see `list`).")]
AllowMissingOption = Annotated[
    bool, typer.Option(help="Drop records whose video/image is missing (counted in the result) instead of failing.")
]


class ContaminationError(VljepaError):
    """--strict and the benchmark's test data overlaps the model's training data (or could not be checked)."""


@app.command("list")
def list_command():
    """Benchmark names and the files each expects (the first line of its importer's documentation)."""
    from ..datasets import IMPORTERS
    from ..eval.benchmark import WORLD

    for name, load in IMPORTERS.items():
        doc = (inspect.getmodule(load).__doc__ or "").strip().splitlines()[0]
        typer.echo(f"{name:12s} {doc}")
    typer.echo(f"{WORLD:12s} The built-in world's test split (`vljepa world`), as `vljepa eval` scores it.")


@app.command("import")
def import_command(
    name: NameArgument,
    root: RootOption,
    out: Annotated[Path, typer.Option(help="The manifest to write (classes.txt and benchmark.json go beside it).")],
    allow_missing: AllowMissingOption = False,
):
    """Import a benchmark's files (no downloads) into a JSONL manifest."""
    from ..datasets import BENCHMARK_INFO_FILE, import_benchmark

    manifest = import_benchmark(name, root, out, allow_missing)
    info = json.loads((manifest.parent / BENCHMARK_INFO_FILE).read_text())
    typer.echo(
        f"{manifest}: {info['num_records']} records of {info['dataset']} {info['split']}"
        + (f", {info['num_classes']} classes" if info["num_classes"] else "")
        + (f", {info['missing_media']} missing files dropped" if info["missing_media"] else "")
    )


@app.command("run")
def run_command(
    name: NameArgument,
    model: Annotated[Path, typer.Option("--model", "-m", help="A trained model directory.")],
    root: RootOption,
    out: Annotated[Path | None, typer.Option(help="Result JSON (default: benchmark-NAME.json).")] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Folder for the imported manifest (default: beside the result, RESULT-import/).")
    ] = None,
    train_manifest: Annotated[
        list[Path] | None,
        typer.Option(
            help="A training manifest to check for overlap (repeatable), beside the model's recorded ones; given, it "
            "stands in for them when the model has no train_config.json."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Refuse to report (exit 2) if the test data overlaps the training data or cannot be checked."
        ),
    ] = False,
    allow_missing: AllowMissingOption = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Feature cache folder.")] = None,
    view: Annotated[str, typer.Option(help="clip, or single_frame (a no-motion control).")] = "clip",
):
    """Import a benchmark, check it against the model's training data, evaluate it under its standard protocol."""
    from ..data.feature_cache import FeatureCache, default_cache_dir
    from ..eval.benchmark import benchmark_result, evaluate_benchmark, prepare_benchmark
    from ..eval.benchmark_table import results_table
    from ..eval.contamination import check_contamination, recorded_training_manifests, summary_line

    existing_folder(model)
    out = out or Path(f"benchmark-{name}.json")
    prepared = prepare_benchmark(name, root, work_dir or out.with_name(f"{out.stem}-import"), allow_missing)
    recorded, problems = recorded_training_manifests(model)
    manifests = [*recorded, *map(str, train_manifest or [])]
    contamination = check_contamination(prepared.manifest, manifests, [] if train_manifest else problems)
    typer.echo(summary_line(contamination), err=True)
    if strict and (contamination["overlap"] or not contamination["complete"]):
        raise ContaminationError(f"--strict: {summary_line(contamination)}; no result written")
    vljepa = load_model(model)
    cache = FeatureCache(cache_dir or default_cache_dir(), vljepa.x_encoder, view=view)
    result = benchmark_result(prepared, model, evaluate_benchmark(vljepa, prepared, cache), contamination)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    lines, footnotes = results_table({str(out): result})
    typer.echo("\n".join([*lines, "", *footnotes, f"result: {out}"]))


@app.command("table")
def table_command(runs: Annotated[list[Path], typer.Argument(help="Result JSON files of `vljepa benchmark run`.")]):
    """Runs side by side with the paper's published numbers for the same benchmarks ("—" where it gives none)."""
    from ..eval.benchmark_table import results_table

    results = {}
    for path in runs:
        try:
            results[str(path)] = json.loads(existing_file(path).read_text())
        except json.JSONDecodeError as error:
            raise VljepaError(f"{path}: not a result JSON ({error})") from error
        if not {"dataset", "metrics"} <= set(results[str(path)]):
            raise VljepaError(f"{path}: not a `vljepa benchmark run` result (no dataset/metrics)")
    lines, footnotes = results_table(results)
    typer.echo("\n".join([*lines, "", *footnotes]))
