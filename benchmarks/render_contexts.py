"""What each rendered section of the docs is rendered from: one function per section (`benchmarks/render_docs.py`
renders `templates/NAME.md.j2` with the context that `CONTEXTS[NAME]` builds), reading the results files it needs.

Every context names, for the line under its table, the `command`, the `machine` and the `results` files it
read. Where a results file does not record its command or machine, the constants below hold them as the
docs named them beside the table; they say so where they are defined.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks/results"

Context = Callable[[], dict]
CONTEXTS: dict[str, Context] = {}


def context(name: str) -> Callable[[Context], Context]:
    """Register the function that builds section `name`'s template context."""

    def register(build: Context) -> Context:
        CONTEXTS[name] = build
        return build

    return register


def results(name: str) -> dict:
    """A results file of benchmarks/results, parsed."""
    return json.loads((RESULTS / name).read_text())


def the_one(values: Iterable[str], what: str) -> str:
    """The one value that all the results files of a table record: a table names one machine, not several."""
    found = sorted(set(values))
    if len(found) != 1:
        raise ValueError(f"the results files of one table disagree on the {what}: {found}")
    return found[0]


def across(runs: Iterable[dict[str, dict]]) -> dict[str, list[float]]:
    """The values of several runs' figures ({task: {"value": ...}}) gathered by task, in run order: the seeds
    of one table column."""
    runs = list(runs)
    return {task: [run[task]["value"] for run in runs] for task in runs[0]}


# Not recorded by the results files that lack a `machine`: the machine as BENCHMARKS.md names it beside them.
CPU2 = "CPU-2, capability AVX512 (AVX512-BF16)"


# The demo. Its results files record PyTorch's CPU capability (`training.precision.cpu_capability`) but neither
# the CPU nor torch's version, nor the command: those are as the README named them beside these runs.
DEMO_MACHINE = "2-core AMD EPYC, torch 2.13.0+cpu, PyTorch capability {capability} with AVX512-BF16"
DEMO_COMMAND = "`vljepa demo`"
DEMO_FP32_SEEDS = (0, 1, 2)
DEMO_FP32_COMMAND = "`vljepa demo --out runs/demo-fp32-seedN bf16=false seed=N`"


def demo_machine(runs: Sequence[dict]) -> str:
    """The machine of demo runs, from the CPU capability they record."""
    capability = the_one((run["training"]["precision"]["cpu_capability"] for run in runs), "CPU capability")
    return DEMO_MACHINE.format(capability=capability)


def demo_floors() -> dict[str, float]:
    """The demo's floors, `DEMO_FLOORS` of src/vljepa/eval/report.py, read from its source: importing the module
    would import torch, seconds that a docs check should not spend."""
    tree = ast.parse((REPO / "src/vljepa/eval/report.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DEMO_FLOORS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError("src/vljepa/eval/report.py defines no DEMO_FLOORS")


def demo_figures(split: dict) -> dict[str, dict[str, float | None]]:
    """One evaluated split of a demo run (`test`, `test_heldout`, ...): {task: {value, chance, prior}}, tasks
    named as the demo's report and `DEMO_FLOORS` name them; a split has only the tasks it was evaluated on, and
    only VQA has a question-only prior (None elsewhere)."""
    figures: dict[str, dict[str, float | None]] = {}
    if "classification" in split:
        classification = split["classification"]
        for k in ("1", "5"):
            figures[f"action classification top-{k}"] = {
                "value": classification["prompted"][f"top{k}"],
                "chance": classification["chance"][f"top{k}"],
                "prior": None,
            }
    if "retrieval" in split:
        retrieval = split["retrieval"]
        for name, match, key, chance in (
            ("text->video R@1 (exact clip)", "exact", "t2v_R@1", "chance_R@1"),
            ("text->video R@1 (same meaning)", "same_meaning", "t2v_R@1", "chance_R@1_same_meaning"),
            ("video->text R@1 (exact clip)", "exact", "v2t_R@1", "chance_R@1"),
        ):
            figures[name] = {"value": retrieval[match][key], "chance": retrieval[chance], "prior": None}
    for kind, stats in split.get("vqa", {}).items():
        figures[f"VQA {kind}"] = {
            "value": stats["accuracy"],
            "chance": stats["chance"],
            "prior": stats.get("question_prior"),
        }
    return figures


def demo_headline(run: dict) -> dict[str, dict[str, float | None]]:
    """The README's figures of one demo run: its held-out test figures, direction answered from a single frame,
    and the steps its two stages trained."""
    steps = run["budget"]["steps trained / recipe"]
    return {
        **demo_figures(run["test"]),
        "single-frame direction": demo_figures(run["test_single_frame"])["VQA direction"],
        "stage 1 steps": {"value": steps["pretrain"][0]},
        "stage 2 steps": {"value": steps["sft"][0]},
    }


def demo_provenance(run: dict) -> dict:
    """The provenance line's context for a table of the native-bf16 demo run alone (`demo.json`)."""
    return {"command": DEMO_COMMAND, "machine": demo_machine([run]), "results": ["demo.json"]}


@context("demo_results")
def demo_results() -> dict:
    """README.md: the native-bf16 demo run beside the lowest of three fp32 runs, with chance and floors."""
    files = ["demo.json", *(f"demo_fp32_seed{seed}.json" for seed in DEMO_FP32_SEEDS)]
    bf16, *fp32 = [results(name) for name in files]
    seeds = ", ".join(map(str, DEMO_FP32_SEEDS))
    return {
        "bf16": demo_headline(bf16),
        "fp32": across(demo_headline(run) for run in fp32),
        "floor": demo_floors(),
        "test": bf16["test"],
        "single_frame": bf16["test_single_frame"],
        "command": f"{DEMO_COMMAND} (bf16) and {DEMO_FP32_COMMAND}, N = {seeds} (fp32)",
        "machine": demo_machine([bf16, *fp32]),
        "results": files,
    }


@context("demo_decoding")
def demo_decoding() -> dict:
    """docs/results.md: what the native-bf16 demo run's Y-decoder writes."""
    run = results("demo.json")
    return {**demo_provenance(run), "generation": run["test"]["generation"], "stream": run["stream"]}


@context("demo_whole_recipe")
def demo_whole_recipe() -> dict:
    """BENCHMARKS.md: every held-out figure of the run that trains the whole recipe, beside chance and floors."""
    run = results("demo.json")
    figures = {**demo_figures(run["test"]), **demo_figures(run["world_prediction"])}
    return {**demo_provenance(run), "figures": figures, "floor": demo_floors(), "test": run["test"]}


@context("demo_paraphrases")
def demo_paraphrases() -> dict:
    """BENCHMARKS.md: the same clips captioned and classified in seen and in held-out wordings."""
    run = results("demo.json")
    return {**demo_provenance(run), "seen": demo_figures(run["test"]), "unseen": demo_figures(run["test_heldout"])}


@context("demo_captions")
def demo_captions() -> dict:
    """BENCHMARKS.md: the Y-decoder's inversion and captioning, in seen and in held-out wordings."""
    run = results("demo.json")
    return {**demo_provenance(run), "seen": run["test"]["generation"], "unseen": run["test_heldout"]["generation"]}


@context("demo_open_vqa")
def demo_open_vqa() -> dict:
    """BENCHMARKS.md: decoded answers to the test questions, beside choosing the nearest option."""
    run = results("demo.json")
    return {**demo_provenance(run), "open_vqa": run["test"]["generation"]["open_vqa"], "vqa": run["test"]["vqa"]}


PROBE_TASKS = ("shape", "colour", "binding", "count", "direction", "action")
PROBES = ("attentive", "linear")


@context("encoder_probes")
def encoder_probes() -> dict:
    """BENCHMARKS.md: frozen probes of every probed encoder, on each task any probe measured."""
    data = results("encoder_probes.json")
    variants = data["variants"]
    measured = [variant["probes"][probe] for variant in variants.values() for probe in PROBES]
    tasks = [task for task in PROBE_TASKS if any(task in by_task for by_task in measured)]
    return {
        "tasks": tasks,
        "chance": {task: next(by_task[task]["chance"] for by_task in measured if task in by_task) for task in tasks},
        "seeds": sorted({len(result["per_seed"]) for by_task in measured for result in by_task.values()}),
        "variants": variants,
        "probes": PROBES,
        # not recorded in the results file: the commands as BENCHMARKS.md named them
        "command": "`PROBE_SEEDS=1 bash benchmarks/encoder_pretrain_sweep.sh runs/world runs/encoder-sweep` (the patch-4 "
        'variants with `PROBE_TASKS="shape binding"`, `random_p4` after `temporal_p4`), then '
        "`python benchmarks/encoder_probe_table.py collect runs/encoder-sweep benchmarks/results/encoder_probes.json`",
        "machine": data["machine"],
        "results": ["encoder_probes.json"],
    }


GRID_FIGURES = {  # row label -> how to read it from one seed's scores (shares, shown as %)
    "VQA shape": lambda s: s["vqa"]["shape"],
    "VQA colour": lambda s: s["vqa"]["colour"],
    "VQA exists (yes/no)": lambda s: s["vqa"]["exists"],
    "VQA count": lambda s: s["vqa"]["count"],
    "VQA direction": lambda s: s["vqa"]["direction"],
    "VQA what happened": lambda s: s["vqa"]["what_happened"],
    "text->video R@1, exact clip": lambda s: s["t2v R@1 exact"],
    "text->video R@1, same meaning": lambda s: s["t2v R@1 same meaning"],
    "action classification top-1": lambda s: s["classification top-1"],
}
GRID_COSINES = {  # row label -> the question type whose answers' target embeddings `answer cosine` compares
    'cosine of the targets "yes" and "no"': "exists",
    "mean cosine between the four shapes' targets": "shape",
    "mean cosine between the seven colours' targets": "colour",
}


def grid_context(name: str, with_rates: bool) -> dict:
    """A `benchmarks/encoder_grid_vqa.py` results file, per figure and variant: the mean over its seeds and each
    seed's value; the training throughput only where the variants differ in cost (`with_rates`)."""
    data = results(name)
    variants = data["variants"]

    def row(label: str, read: Callable[[dict], float]) -> dict:
        cells = {}
        for variant_name, variant in variants.items():
            values = [read(scores) for scores in variant["seeds"].values()]
            cells[variant_name] = {"mean": sum(values) / len(values), "per_seed": values}
        return {"label": label, "cells": cells}

    rates = {
        variant_name: [scores["stage 2 samples/s (median)"] for scores in variant["seeds"].values()]
        for variant_name, variant in variants.items()
    }
    return {
        **data,
        "rows": [row(label, read) for label, read in GRID_FIGURES.items()],
        "cosine_rows": [
            row(label, lambda scores, kind=kind: scores["answer cosine"][kind]) for label, kind in GRID_COSINES.items()
        ],
        "rates": rates if with_rates else None,
        "command": f"`vljepa world --out runs/demo/world`, then `{data['command']}`",
        "results": [name],
    }


@context("encoder_grid_vqa")
def encoder_grid_vqa() -> dict:
    """BENCHMARKS.md: VL-JEPA at equal steps on the random encoder in 8-px and in 4-px patches, per seed."""
    return grid_context("encoder_grid_vqa.json", with_rates=True)


@context("yes_no_levers")
def yes_no_levers() -> dict:
    """BENCHMARKS.md: one seed of each lever tried on the yes/no answers, on either token grid."""
    return grid_context("yes_no_levers.json", with_rates=False)


@context("answer_targets_vqa")
def answer_targets_vqa() -> dict:
    """BENCHMARKS.md: the demo against its Y-encoder head trained at x0.05 of the LR, three seeds each."""
    return grid_context("answer_targets_vqa.json", with_rates=False)


@context("predictor_probe")
def predictor_probe() -> dict:
    """BENCHMARKS.md: what the predictor's output holds, by linear probes on a fresh-clone demo's model."""
    data = results("predictor_probe.json")
    return {**data, "command": f"`{data['command']}`, after `vljepa demo`", "results": ["predictor_probe.json"]}


@context("train_throughput")
def train_throughput() -> dict:
    """BENCHMARKS.md: samples/s, FLOPs and achieved FLOP/s of each training-step variant."""
    data = results("train_throughput.json")
    return {
        **data,
        "ratios": {"eager": 1.0, **data["ratios to eager"]},
        "warm_up": data["warm-up s (5 steps)"],
        # not recorded in the results file: the command as BENCHMARKS.md named it
        "command": "`python benchmarks/train_throughput.py --world runs/demo/world --steps 30`, after `vljepa demo`",
        "results": ["train_throughput.json"],
    }


PAPER_HZ = 0.35  # the decode rate the paper reports k at


@context("selective_decoding")
def selective_decoding() -> dict:
    """BENCHMARKS.md: CIDEr-D of uniform and adaptive decoding at each rate, and k, the decodes uniform needs."""
    data = results("selective_decoding.json")
    by_method = {
        method: {row["hz"]: row for row in data["rows"] if row["method"] == method}
        for method in ("uniform", "adaptive")
    }
    rates = sorted(by_method["adaptive"], reverse=True)
    return {
        "rows": [{"hz": hz, **{m: by_method[m][hz] for m in by_method}} for hz in rates],
        "paper_hz": PAPER_HZ,
        # the streams' world is not in the results file: its command as BENCHMARKS.md named it
        "command": "`vljepa world --out runs/streams20 num_train=0 num_val=0 num_test=0 num_streams=20`, "
        f"then `{data['command']}`",
        "machine": data["machine"],
        "results": ["selective_decoding.json"],
    }


@context("vector_index_1m")
def vector_index_1m() -> dict:
    """BENCHMARKS.md: the index past its flat limit on a million vectors, beside exact search."""
    data = results("vector_index_1m.json")
    return {
        **data,
        "recall": data["recall@10"],
        "index_file_gb": data["index_file_bytes"] / 1e9,
        "codes_mb": data["n"] * data["index"]["subquantizers"] * data["index"]["bits"] / 8 / 1e6,
        # not recorded in the results file: the command as BENCHMARKS.md named it
        "command": "`python benchmarks/vector_index.py ann --n 1000000 --out benchmarks/results/vector_index_1m.json`",
        "results": ["vector_index_1m.json"],
    }


RECALL_AT = 10  # the recall@k the index benchmarks measure: re-ranking computes k x k_factor exact distances


@context("vector_index_sweep")
def vector_index_sweep() -> dict:
    """BENCHMARKS.md: recall and exact distances per query of each index and setting at 100,000 vectors; the
    setting the million-vector index runs with is marked `chosen`."""
    files = ["vector_index_sweep_100k.json", "vector_index_1m.json"]
    sweep, million = [results(name) for name in files]
    chosen = (million["index"]["subquantizers"], million["index"]["k_factor"])
    codes = [
        {
            **point,
            "distances_per_query": RECALL_AT * point["k_factor"],
            "chosen": chosen == tuple(point[k] for k in ("subquantizers", "k_factor")),
        }
        for point in sweep["pq_fastscan_refine"]
    ]
    return {
        "dim": sweep["dim"],
        "hnsw": [{**point, "chosen": False} for point in sweep["hnsw"]],
        "ivf": [{**point, "chosen": False} for point in sweep["ivf"]],
        "codes": codes,
        # not recorded in the results file: the command as BENCHMARKS.md named it
        "command": "`python benchmarks/vector_index.py ann --n 100000 --sweep --recall-only "
        "--out benchmarks/results/vector_index_sweep_100k.json`",
        "machine": sweep["machine"],
        "results": files,
    }


@context("vector_index_e2e")
def vector_index_e2e() -> dict:
    """BENCHMARKS.md: text->video recall of the demo's model searched by `vljepa eval` and by the index."""
    data = results("vector_index_e2e_demo.json")
    searches = ("eval_suite", "index_of_the_suite_predictions", "index_built_from_videos")
    return {
        "recalls": {key: [data[key][f"t2v_R@{k}"] for k in (1, 5, 10)] for key in searches},
        "machine": data["machine"],
        # not recorded in the results file: the command as BENCHMARKS.md named it
        "command": "`python benchmarks/vector_index.py e2e --model runs/demo/model/final "
        "--manifest runs/demo/world/test.jsonl`",
        "results": ["vector_index_e2e_demo.json"],
    }


@context("serve_load")
def serve_load() -> dict:
    """BENCHMARKS.md: `vljepa serve` under 32 clients, with dynamic batching and without."""
    data = results("serve_load.json")
    return {
        "modes": {mode: data[mode] for mode in ("on", "off")},
        # not recorded in the results file: the command and machine as BENCHMARKS.md named them
        "command": "`python benchmarks/serve_load.py -m runs/demo/model/final --world runs/demo/world --clients 32 "
        "--seconds 60`, after `vljepa demo`",
        "machine": CPU2,
        "results": ["serve_load.json"],
    }


@context("serve_memory")
def serve_memory() -> dict:
    """BENCHMARKS.md: the server's memory after 50 requests, 400 uploads and a 60-s load test."""
    data = results("serve_memory.json")
    return {
        **data,
        "command": "`python benchmarks/serve_memory.py -m runs/demo/model/final --world runs/demo/world`, after "
        "`vljepa demo`",
        "results": ["serve_memory.json"],
    }


@context("input_pipeline_throughput")
def input_pipeline_throughput() -> dict:
    """BENCHMARKS.md: training samples/s from the feature cache and from shards with the encoder online."""
    files = ["input_pipeline_throughput.json", "input_pipeline_throughput_1worker.json"]
    runs = [results(name) for name in files]
    return {
        "runs": runs,
        # not recorded in the results files: the commands as BENCHMARKS.md named them
        "command": "`python benchmarks/input_pipeline.py throughput --world runs/demo/world --steps 30 --workers 2` "
        "(and `--workers 1`), after `vljepa demo`",
        "machine": the_one((run["machine"] for run in runs), "machine"),
        "results": files,
    }


@context("input_pipeline_memory")
def input_pipeline_memory() -> dict:
    """BENCHMARKS.md: the peak memory of training from shards on ten times the data."""
    data = results("input_pipeline_memory.json")
    return {
        **data,
        # not recorded in the results file: the commands as BENCHMARKS.md named them
        "command": "`vljepa world --out runs/world2k num_train=2000 num_val=20 num_test=20 num_streams=0`, then "
        "`python benchmarks/input_pipeline.py memory --world runs/world2k --clips 2000 20000 --steps 5`",
        "results": ["input_pipeline_memory.json"],
    }


def every_frame_cell(outcome: str) -> str:
    """The reading-every-frame column's cell for one case's outcome: how it was killed, or empty where the old
    code could not run the case."""
    return outcome.replace("killed: RSS above", "killed above") if outcome.startswith("killed") else ""


@context("seeking_reads")
def seeking_reads() -> dict:
    """BENCHMARKS.md: wall time and peak memory of reading a long video, beside a read that decodes every frame."""
    files = ["seeking_reads.json", "seeking_reads_rss.json", "seeking_reads_previous.json"]
    timed, measured, previous = [results(name) for name in files]
    return {
        "video": timed["video"],
        "seconds": {case: result["seconds"] for case, result in timed["results"].items()},
        "peak_rss_mb": {case: result["peak_rss_mb"] for case, result in measured["results"].items()},
        "every_frame": {
            case: every_frame_cell(the_one((run["outcome"] for run in result["runs"]), "outcome"))
            for case, result in previous["results"].items()
        },
        # not recorded in the results files: the commands as BENCHMARKS.md named them (it names none for the
        # every-frame read, run from an older checkout)
        "command": "`python benchmarks/seeking_reads.py` (wall time) and `python benchmarks/seeking_reads.py "
        "--repeats 1 --minutes 10 --out benchmarks/results/seeking_reads_rss.json` (peak RSS)",
        "machine": the_one((data["machine"] for data in (timed, measured, previous)), "machine"),
        "results": files,
    }


@context("plan_memory")
def plan_memory() -> dict:
    """BENCHMARKS.md: the planner's traced step against the measured one, on this CPU."""
    data = results("plan_memory.json")
    worst = max(data["steps"], key=lambda row: abs(row["predicted_step"] / row["measured_step"] - 1))
    return {
        **data,
        "worst": worst["predicted_step"] / worst["measured_step"],
        "command": f"`{data['command']}`",
        "results": ["plan_memory.json"],
    }


@context("plan_paper")
def plan_paper() -> dict:
    """docs/paper-scale.md: the paper's four stages planned on 1, 8 and 64 H100-80GB and on one 24 GB card."""
    data = results("plan_paper.json")
    first = next(iter(data["plans"].values()))
    notes = first["assumptions"][1:]  # the first names the GPUs, which each row's label gives
    return {**data, "notes": notes, "command": f"`{data['command']}`", "results": ["plan_paper.json"]}


@context("onnx_runtime")
def onnx_runtime() -> dict:
    """docs/deploy.md and BENCHMARKS.md: PyTorch eager, ONNX fp32 and ONNX int8 side by side."""
    data = results("onnx_runtime.json")
    return {
        **data,
        "answers": data["label_records"] + data["question_records"],
        "command": "`python benchmarks/onnx_runtime.py --model runs/demo/model/final --world runs/demo/world`, "
        "after `vljepa demo`",
        "results": ["onnx_runtime.json"],
    }


@context("decode_memory")
def decode_memory() -> dict:
    """BENCHMARKS.md: peak memory of classifying a clip against its resolution."""
    data = results("decode_memory.json")
    return {
        **data,
        "command": "`python benchmarks/decode_memory.py --model runs/demo/model/final`, after `vljepa demo`",
        "results": ["decode_memory.json"],
    }


@context("live_stream")
def live_stream() -> dict:
    """docs/deploy.md: live captioning of a real-time source."""
    data = results("live_stream.json")
    return {
        **data,
        "command": "`python benchmarks/live_stream.py --model runs/demo/model/final`, after `vljepa demo`",
        "results": ["live_stream.json"],
    }
