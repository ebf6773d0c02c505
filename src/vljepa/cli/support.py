"""What every command does before its work: check the paths it was given (an OSError naming the path,
which the CLI turns into one line) and load a trained model quietly; the `--model` option they share.
`load_inference_model` also opens a `vljepa export onnx` folder, run by onnxruntime without PyTorch (the
commands that take one: classify, ask); `load_model` refuses one with a message saying which commands do."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated

import typer

ModelOption = Annotated[
    Path, typer.Option("--model", "-m", help="A trained model directory (e.g. runs/demo/model/final).")
]
InferenceModelOption = Annotated[
    Path,
    typer.Option(
        "--model",
        "-m",
        help="A trained model directory (e.g. runs/demo/model/final), or its `vljepa export onnx` folder "
        "(run by onnxruntime, without PyTorch).",
    ),
]
ONNX_COMMANDS = "classify, ask, caption, stream, search and serve"


def existing_file(path: Path) -> Path:
    """`path` if it is a file; FileNotFoundError or IsADirectoryError naming it otherwise (before any model loads)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder, not a file", str(path))
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    return path


def existing_data(source: str | Path) -> None:
    """A manifest file, or a shard source whose every local shard exists (a `ShardError` names a missing one;
    a streamed source's URLs are opened only when read). A string, not a `Path`, keeps a URL's `//`."""
    from ..data.shards import is_shard_source, shard_list

    if is_shard_source(source):
        shard_list(source)
    else:
        existing_file(Path(source))


def existing_folder(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path))
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file, not a folder", str(path))
    return path


def quiet_loading() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def is_onnx_export(path: Path) -> bool:
    from ..deploy.sidecar import SIDECAR_FILE

    return (path / SIDECAR_FILE).is_file()


def load_model(path: Path):
    from ..errors import VljepaError
    from ..model.vljepa import VLJepa

    if is_onnx_export(path):
        raise VljepaError(
            f"{path}: an ONNX export; this command needs the PyTorch model folder ({ONNX_COMMANDS} run ONNX)"
        )
    quiet_loading()
    return VLJepa.from_pretrained(path)


def load_inference_model(path: Path):
    """`OnnxVLJepa` for an ONNX export folder, else the PyTorch `VLJepa`."""
    if is_onnx_export(path):
        from ..deploy.runtime import OnnxVLJepa

        return OnnxVLJepa(path)
    return load_model(path)


def model_frames(path: Path) -> int:
    """The frames per clip of the model (or ONNX export) in `path`, read without loading it."""
    if is_onnx_export(path):
        from ..deploy.sidecar import read_sidecar

        return read_sidecar(path).preprocessing.num_frames
    from ..config import ModelConfig, read_config_json
    from ..model.vljepa import CONFIG_FILE

    return read_config_json(ModelConfig, path / CONFIG_FILE, "vljepa checkpoint").x_encoder.num_frames
