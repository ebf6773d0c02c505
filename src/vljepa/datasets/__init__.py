"""Importers of the paper's benchmarks: a dataset's public files on disk -> a JSONL manifest.

One module per dataset, its docstring giving the exact files and layout expected and the mapping to
manifest records. Importers read files and write manifests only (data layer: no model, no downloads);
`vljepa.eval.benchmark` evaluates the manifests with the one evaluation engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import VljepaError
from . import activitynet, didemo, gqa, karpathy, kinetics, msrvtt, msvd, pope, ssv2, tallyqa
from .common import BENCHMARK_INFO_FILE, CLASSES_FILE, BenchmarkDataError, Imported, write_import

IMPORTERS: dict[str, Callable[[Path, bool], Imported]] = {
    "msrvtt": msrvtt.load,
    "kinetics400": kinetics.load_400,
    "kinetics600": kinetics.load_600,
    "ssv2": ssv2.load,
    "pope": pope.load,
    "coco": karpathy.load_coco,
    "flickr30k": karpathy.load_flickr30k,
    "gqa": gqa.load,
    "tallyqa": tallyqa.load,
    "activitynet": activitynet.load,
    "didemo": didemo.load,
    "msvd": msvd.load,
}


def load_benchmark(name: str, root: str | Path, allow_missing: bool = False) -> Imported:
    """Read dataset `name` from its files under `root` (see each importer's docstring)."""
    if name not in IMPORTERS:
        raise VljepaError(f"unknown benchmark {name!r}; known: {', '.join(IMPORTERS)}")
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkDataError(f"{root}: no such folder (the dataset's root)")
    return IMPORTERS[name](root, allow_missing)


def import_benchmark(name: str, root: str | Path, out: str | Path, allow_missing: bool = False) -> Path:
    """Import dataset `name` into the manifest `out` (with classes.txt and benchmark.json beside it)."""
    return write_import(load_benchmark(name, root, allow_missing), out)


__all__ = [
    "BENCHMARK_INFO_FILE",
    "CLASSES_FILE",
    "IMPORTERS",
    "BenchmarkDataError",
    "Imported",
    "import_benchmark",
    "load_benchmark",
]
