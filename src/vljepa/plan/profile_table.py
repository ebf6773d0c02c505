"""What `vljepa plan` traces, kept: pass-2 profiles and forward FLOPs, so that a registered model plans in seconds.

Tracing pass 2 of the paper model costs about 15 s per clip, text and setting shape on fake tensors
(`trace.py`), and counting one sample's forward FLOPs (`model/info.py`) a few seconds per stage; what they give
is small (a few lines in the micro-batch; three numbers) and depends only on the model, the shape and the code
that traced it. The package carries `traced_profiles.json`, written by `python benchmarks/plan_memory.py
profiles` for the registered models under the paper's stages; the planner reads an entry there when its key
matches, and traces or counts otherwise. The key is a hash of the model's config and architectures, the shape,
the torch and transformers versions, and the source of the files that trace (so that a change to any of them
traces again rather than reading a stale entry).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers

from ..config import ModelConfig
from ..registry import Architectures
from .trace import ChunkProfile, Lines

TABLE = Path(__file__).with_name("traced_profiles.json")
TRACING_SOURCES = [  # the code whose change changes a traced profile
    Path(__file__).with_name("trace.py"),
    Path(__file__).with_name("live_bytes.py"),
    Path(__file__).parents[1] / "model" / "info.py",
    Path(__file__).parents[1] / "model" / "predictor.py",
]


@functools.cache
def tracing_versions() -> dict[str, str]:
    """The releases and code that trace; torch's without its build (+cpu, +cu128): the trace runs on fake CPU
    tensors whichever build it is, so a GPU machine reads the profiles a CPU wrote."""
    sources = hashlib.sha256(b"".join(path.read_bytes() for path in TRACING_SOURCES)).hexdigest()[:16]
    release = torch.__version__.split("+")[0]
    return {"torch": release, "transformers": transformers.__version__, "tracing code": sources}


def profile_key(config: ModelConfig, architectures: Architectures, shape: object) -> str:
    """The key of what was traced or counted for `config` at `shape` (a dataclass)."""
    described = {
        "model": dataclasses.asdict(config),
        "architectures": dataclasses.asdict(architectures),
        "shape": dataclasses.asdict(shape),
        **tracing_versions(),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass
class KeptTraces:
    profiles: dict[str, ChunkProfile] = field(default_factory=dict)  # pass 2, by `profile_key` of its ChunkShape
    flops: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # X-encoder, predictor, text forward

    def update(self, other: KeptTraces) -> None:
        self.profiles.update(other.profiles)
        self.flops.update(other.flops)


def _lines_json(lines: Lines) -> list[list[float]]:
    return [lines.fixed.tolist(), lines.per_sample.tolist()]


def _lines(pair: list[list[float]]) -> Lines:
    return Lines(np.asarray(pair[0], dtype=np.float64), np.asarray(pair[1], dtype=np.float64))


def read_table(path: Path = TABLE) -> KeptTraces:
    """The entries of `path` (none if it does not exist)."""
    if not path.exists():
        return KeptTraces()
    table = json.loads(path.read_text())
    profiles = {
        key: ChunkProfile(_lines(e["every_chunk"]), _lines(e["first_chunk"])) for key, e in table["profiles"].items()
    }
    return KeptTraces(profiles, {key: tuple(flops) for key, flops in table["flops"].items()})


def write_table(kept: KeptTraces, path: Path = TABLE) -> Path:
    profiles = {
        key: {"every_chunk": _lines_json(p.every_chunk), "first_chunk": _lines_json(p.first_chunk)}
        for key, p in sorted(kept.profiles.items())
    }
    table = {"traced with": tracing_versions(), "profiles": profiles, "flops": dict(sorted(kept.flops.items()))}
    path.write_text(json.dumps(table, indent=1) + "\n")
    return path
