"""The package's layers: every import points down (or sideways, within a layer), never up.

This is the one place the layer order is defined. From the bottom:
  foundation: errors, config (it names the losses ModelConfig accepts), the model registry, core (atomic writes,
              child-process probes, precision, compilation, the checked config loader, eval mode, ragged padding,
              progress);
  data:       manifests, shards, video I/O, clip sources, the built-in world, the feature cache (it needs an encoder,
              but only through the `ClipEncoder` protocol); datasets, the importers of the paper's benchmarks
              (files -> manifests);
  model:      the X-encoder (with its preprocessing), predictor, Y-encoder, Y-decoder, causal LM, losses, VLJepa,
              the parameter/FLOP table, checkpoint conversion;
  tasks:      what a trained model does (embed, classify, retrieve, VQA, stream captioning, the video index); deploy,
              the same model exported to ONNX and run by onnxruntime without PyTorch;
  substrate:  what every training loop shares (device, AdamW and schedules, resumable state, metrics, run folder);
  train:      the VL-JEPA trainer and the Y-decoder's training, which never import evaluation;
  evaluation, encoder pretraining and planning: eval (its probes train on the substrate), encoder_pretrain,
              plan (what fits on which GPUs: the model's step traced on fake tensors);
  application: the demo, the command line, the HTTP server (serve), the package root.
The check parses every module with `ast` (`ast.walk`: imports inside functions count too), resolves relative
imports, and reports each import of a higher layer; a module with no layer is reported as well, so a
new module has to be placed. The package root holds at most MAX_ROOT_MODULES modules: the rest live in
folders that say what they hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vljepa

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "config", "registry", "core"),  # foundation: errors, typed configs, named models, the runtime core
    ("data", "datasets"),  # data: manifests, shards, video I/O, the world, the feature cache; benchmark importers
    ("model",),  # model: the four parts wired as VLJepa, losses, info, checkpoint conversion
    ("tasks", "deploy"),  # tasks: what a trained model does; deploy: ONNX export and the onnxruntime model
    ("substrate",),  # substrate: what every training loop shares
    ("train",),  # train: the VL-JEPA trainer and the Y-decoder's training
    ("eval", "encoder_pretrain", "plan"),  # evaluation; the X-encoder's self-supervised pretraining; the GPU planner
    ("demo", "cli", "serve", ""),  # application: the demo, the command line, the HTTP server, the package root ("")
)
MAX_ROOT_MODULES = 8


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imported_modules(path: Path, name: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved; `from a import b`
    names the module `a.b` when that is a module, else `a`."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found += [
                (node.lineno, f"{target}.{a.name}" if f"{target}.{a.name}" in known else target) for a in node.names
            ]
    return found


def layer_of(module: str, package: str, layers: tuple[tuple[str, ...], ...]) -> int | None:
    """The layer whose entry is the module's first component below the package ("" for the package itself)."""
    below = module.removeprefix(package).removeprefix(".")
    first = below.split(".")[0]
    return next((i for i, names in enumerate(layers) if first in names), None)


def layer_violations(root: Path, package: str, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """One message per upward import (or module without a layer) under the package folder `root`."""
    files = sorted(root.rglob("*.py"))
    known = {module_name(f, root, package) for f in files}
    problems = []
    for file in files:
        name = module_name(file, root, package)
        own = layer_of(name, package, layers)
        if own is None:
            problems.append(f"{name}: not in any layer")
            continue
        for line, target in imported_modules(file, name, known):
            if target != package and not target.startswith(package + "."):
                continue  # another distribution
            other = layer_of(target, package, layers)
            if other is not None and other > own:
                problems.append(
                    f"{file.relative_to(root)}:{line}: {name} (layer {own}) imports {target} (layer {other})"
                )
    return problems


def test_vljepa_imports_only_downwards():
    root = Path(vljepa.__file__).parent
    assert layer_violations(root, "vljepa", LAYERS) == []


def test_the_package_root_holds_few_modules():
    modules = sorted(path.name for path in Path(vljepa.__file__).parent.glob("*.py"))
    assert len(modules) <= MAX_ROOT_MODULES, modules


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


SYNTHETIC_LAYERS = (("errors",), ("data",), ("model",), ("tasks",))


@pytest.mark.parametrize(
    "statement, target",
    [
        ("from ..tasks.runner import run", "shop.tasks.runner"),
        ("from ..tasks import runner", "shop.tasks.runner"),
        ("import shop.model", "shop.model"),
        ("def late():\n    from .. import model", "shop.model"),
    ],
)
def test_checker_reports_an_upward_import(tmp_path, statement, target):
    root = write_package(
        tmp_path / "shop",
        {
            "__init__.py": "",
            "errors.py": "",
            "model.py": "from .errors import Problem\n",
            "data/__init__.py": "",
            "data/reader.py": f"from ..errors import Problem\n{statement}\n",
            "tasks/__init__.py": "",
            "tasks/runner.py": "from ..data.reader import read\nfrom ..model import Model\n",
        },
    )
    layers = (*SYNTHETIC_LAYERS[:1], ("", "data"), *SYNTHETIC_LAYERS[2:])  # "" (the root) in the data layer
    line = statement.count("\n") + 2
    assert layer_violations(root, "shop", layers) == [
        f"data/reader.py:{line}: shop.data.reader (layer 1) imports {target} (layer {3 if 'tasks' in target else 2})"
    ]


def test_checker_reports_a_module_without_a_layer(tmp_path):
    root = write_package(tmp_path / "shop", {"__init__.py": "", "errors.py": "", "stray.py": "from . import errors\n"})
    assert layer_violations(root, "shop", (("", "errors"),)) == ["shop.stray: not in any layer"]
