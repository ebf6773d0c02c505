"""The sidecar of an ONNX export (`vljepa-onnx.json`): what a runtime without PyTorch needs beside the graphs.

It records the preprocessing (image size, frames, mean and std), the two tokenizers' files and limits, the
classification prompt, each graph's file, byte size and input and output names, the weights' precision
(fp32, or int8 where the X-encoder and predictor were quantised), the label names whose embeddings ship in
`labels.npy`, and the versions and source model that made it. `read_sidecar` checks it against the folder:
a missing sidecar, an unknown key, a graph file that is missing or of another size, or a graph whose inputs
are not the recorded ones is an `OnnxExportError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from ..core.config_loader import CheckedConfig, NonNegativeInt, OneOf, PositiveInt, from_dict
from ..errors import ConfigError, VljepaError

SIDECAR_FILE = "vljepa-onnx.json"
FORMAT_VERSION = 1
LABELS_FILE = "labels.npy"
DECODER_ROWS_FILE = "decoder_rows.npy"  # the Y-decoder's vocabulary: row -> tokenizer id
GRAPH_NAMES = ("x_encoder", "predictor", "y_encoder")


class OnnxExportError(VljepaError, ValueError):
    """An ONNX export folder that cannot be run: no sidecar, or graphs that are not the ones it records."""


@dataclass
class GraphSpec(CheckedConfig):
    file: str
    bytes: NonNegativeInt
    inputs: list[str]
    outputs: list[str]


@dataclass
class Preprocessing(CheckedConfig):
    """`model/x_encoder.preprocess_clip`'s parameters: shorter side to `image_size`, centre crop, normalise."""

    image_size: PositiveInt
    num_frames: PositiveInt
    mean: list[float]
    std: list[float]


@dataclass
class TextSpec(CheckedConfig):
    """A tokenizer (`tokenizers` JSON file in the folder) and how its texts are cut and prefixed."""

    tokenizer: str
    max_tokens: PositiveInt
    prompt: str | None = None  # prepended to every text (a sentence encoder's document prompt)
    pad_id: NonNegativeInt = 0


@dataclass
class Decoding(CheckedConfig):
    """The Y-decoder's greedy decoding: its tokenizer file, the rows of BOS and EOS, and its limits."""

    tokenizer: str
    bos: NonNegativeInt
    eos: NonNegativeInt
    max_new_tokens: PositiveInt
    no_repeat_ngram_size: NonNegativeInt


@dataclass
class OnnxSidecar(CheckedConfig):
    format: PositiveInt
    weights: Annotated[str, OneOf(("fp32", "int8"))]
    shared_dim: PositiveInt
    classification_prompt: str
    preprocessing: Preprocessing
    query: TextSpec  # the predictor's query: no special tokens, cut at `max_tokens`
    text: TextSpec  # the Y-encoder's texts: special tokens, padded to the longest, cut at `max_tokens`
    graphs: dict[str, GraphSpec]
    labels: list[str] = field(default_factory=list)  # rows of `labels.npy`, the Y-encoded label names
    decoding: Decoding | None = None  # with a `y_decoder` graph
    source: dict[str, str] = field(default_factory=dict)  # fingerprints of the model: its X-encoder's, its own
    versions: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        if self.format != FORMAT_VERSION:
            raise ConfigError(f"format: this vljepa reads ONNX exports of format {FORMAT_VERSION}, not {self.format}")
        missing = [name for name in GRAPH_NAMES if name not in self.graphs]
        if missing:
            raise ConfigError(f"graphs: no {', '.join(missing)}")


def write_sidecar(sidecar: OnnxSidecar, folder: Path) -> None:
    (folder / SIDECAR_FILE).write_text(json.dumps(dataclasses.asdict(sidecar), indent=2) + "\n")


def read_sidecar(folder: str | Path) -> OnnxSidecar:
    """The folder's sidecar, checked against the graph files beside it."""
    folder = Path(folder)
    path = folder / SIDECAR_FILE
    if not path.is_file():
        raise OnnxExportError(f"{folder}: no {SIDECAR_FILE}; not a `vljepa export onnx` folder")
    try:
        sidecar = from_dict(OnnxSidecar, json.loads(path.read_text()))
    except (ConfigError, json.JSONDecodeError) as error:
        raise OnnxExportError(f"{path}: {error}") from error
    for name, graph in sidecar.graphs.items():
        file = folder / graph.file
        if not file.is_file():
            raise OnnxExportError(f"{file}: missing ({path} lists it as the {name} graph)")
        if file.stat().st_size != graph.bytes:
            raise OnnxExportError(
                f"{file}: {file.stat().st_size} bytes, {path} records {graph.bytes}; "
                "the graph and the sidecar come from different exports"
            )
    for spec in (sidecar.query, sidecar.text):
        if not (folder / spec.tokenizer).is_file():
            raise OnnxExportError(f"{folder / spec.tokenizer}: missing ({path} lists it as a tokenizer)")
    if (sidecar.decoding is None) != ("y_decoder" not in sidecar.graphs):
        raise OnnxExportError(f"{path}: a y_decoder graph and its decoding settings go together")
    if sidecar.decoding is not None:
        for name in (sidecar.decoding.tokenizer, DECODER_ROWS_FILE):
            if not (folder / name).is_file():
                raise OnnxExportError(f"{folder / name}: missing ({path} lists a Y-decoder)")
    if sidecar.labels and not (folder / LABELS_FILE).is_file():
        raise OnnxExportError(f"{folder / LABELS_FILE}: missing ({path} lists {len(sidecar.labels)} labels)")
    return sidecar
