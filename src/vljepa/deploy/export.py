"""`vljepa export onnx`: a trained model's inference graphs as ONNX, run by onnxruntime without PyTorch.

Three graphs and, with a Y-decoder, a fourth, each through `torch.onnx.export(..., dynamo=True)` (the exporter built on `torch.export`):
- `x_encoder.onnx`: normalised video (B, T, 3, S, S) -> visual tokens (B, N, D). T is the model's frame count
  (the token grid and its rotary positions depend on it); the batch is dynamic.
- `predictor.onnx`: visual tokens, query ids (B, Q) and mask (B, Q) -> unnormalised prediction
  (B, shared_dim). Batch and query length are dynamic; a query of length 0 is caption mode.
- `y_encoder.onnx`: text ids and mask (B, L) -> unnormalised text embedding (B, shared_dim): the sentence
  encoder, its pooling and normalisation, and the head; batch and length are dynamic.
- `y_decoder.onnx`, when the model has a Y-decoder: the embedding (B, shared_dim) and the vocabulary rows
  written so far (B, L, L >= 0) -> the next row's logits. It recomputes the whole short sequence at each step
  (no key-value cache: captions are a few dozen tokens); the runtime decodes greedily with the decoder's
  rule against repeated token pairs, as `YDecoder.decode` does with a beam of 1.
The preprocessing runs in numpy (`deploy/preprocess.py`) and the tokenizers through the `tokenizers` library,
from the two tokenizer files written beside the graphs. Label names given at export are Y-encoded once into
`labels.npy`, so classifying against them needs no text graph call. Every graph is run once by onnxruntime on
the export's own example input and compared with PyTorch before the export is written: a graph that does not
reproduce the model is an error, not a file.
int8 (`int8=True`): the fp32 export, then `deploy/quantise.py` on it. Its accuracy cost is measured, not
assumed (`benchmarks/onnx_runtime.py`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.atomic import writable_folder
from ..core.progress import progress_bar
from ..errors import require_extra
from ..model.vljepa import VLJepa
from .quantise import quantise_export
from .sidecar import (
    DECODER_ROWS_FILE,
    FORMAT_VERSION,
    LABELS_FILE,
    SIDECAR_FILE,
    Decoding,
    GraphSpec,
    OnnxExportError,
    OnnxSidecar,
    Preprocessing,
    TextSpec,
    write_sidecar,
)

OPSET = 18
MIN_COSINE = 0.9999  # an exported graph's outputs against PyTorch's on the example input
QUERY_TOKENIZER, TEXT_TOKENIZER, DECODER_TOKENIZER = (
    "query_tokenizer.json",
    "text_tokenizer.json",
    "decoder_tokenizer.json",
)


class _XEncoderGraph(nn.Module):
    def __init__(self, model: VLJepa):
        super().__init__()
        self.x_encoder = model.x_encoder

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.x_encoder(video)


class _PredictorGraph(nn.Module):
    def __init__(self, model: VLJepa):
        super().__init__()
        self.predictor = model.predictor

    def forward(self, tokens: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        return self.predictor(tokens, query_ids, query_mask)


class _YEncoderGraph(nn.Module):
    def __init__(self, model: VLJepa):
        super().__init__()
        self.y_encoder = model.y_encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.y_encoder.head(self.y_encoder.text_model(features)["sentence_embedding"])


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's own notices (optional torchvision ops it skips, axis names it merges) off the console."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class _DecoderStepGraph(nn.Module):
    """The Y-decoder's next-token logits (B, vocabulary rows) given the embedding and the rows written so far."""

    def __init__(self, model: VLJepa):
        super().__init__()
        self.decoder = model.y_decoder

    def forward(self, embedding: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        prefix = self.decoder._prefix_embeds(embedding)
        sequence = torch.cat([prefix, self.decoder.lm.get_input_embeddings()(rows)], dim=1)
        return self.decoder.lm(inputs_embeds=sequence, use_cache=False).logits[:, -1]


def _export_graph(
    module: nn.Module, example: dict[str, torch.Tensor], dynamic: dict[str, dict[int, str]], output: str, path: Path
) -> GraphSpec:
    """Export one graph, check it against PyTorch on `example` under onnxruntime, and describe it."""
    onnxruntime = require_extra("onnxruntime", "onnx", "checking an ONNX export")

    dims = {name: {axis: torch.export.Dim(label) for axis, label in axes.items()} for name, axes in dynamic.items()}
    dims = {name: dims.get(name, {}) for name in example}
    module.eval()
    with _quiet_exporter():
        torch.onnx.export(
            module,
            tuple(example.values()),
            str(path),
            dynamo=True,
            opset_version=OPSET,
            input_names=list(example),
            output_names=[output],
            dynamic_shapes=dims,
            external_data=False,
            verbose=False,
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {name: value.numpy() for name, value in example.items()})[0]
    with torch.no_grad():
        reference = module(*example.values()).float()
    cosine = F.cosine_similarity(torch.from_numpy(exported).flatten(1), reference.flatten(1)).min().item()
    if cosine < MIN_COSINE:
        raise OnnxExportError(f"{path.name}: onnxruntime's output differs from PyTorch's (cosine {cosine:.6f})")
    return GraphSpec(file=path.name, bytes=path.stat().st_size, inputs=list(example), outputs=[output])


def _text_tokenizer_file(tokenizer, path: Path) -> None:
    """A transformers fast tokenizer's `tokenizers` model, with its fixed padding and truncation removed (the
    runtime sets them per call)."""
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(path))


def _versions() -> dict[str, str]:
    packages = ("vljepa", "torch", "transformers", "onnx", "onnxruntime", "onnxscript")
    return {"python": platform.python_version(), **{p: importlib.metadata.version(p) for p in packages}}


def export_onnx(model_dir: str | Path, out_dir: str | Path, int8: bool = False, labels: list[str] = ()) -> Path:
    """Write the ONNX graphs, tokenizers, label embeddings and sidecar of the model in `model_dir` to
    `out_dir` (replacing an earlier export there); returns `out_dir`. The export is written beside `out_dir`
    and moved into place when complete, so a failed export leaves no half-written folder."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        require_extra(module, "onnx", "vljepa export onnx")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not (out_dir / SIDECAR_FILE).is_file():
        raise OnnxExportError(f"{out_dir}: exists and is not an ONNX export; choose an empty or new folder")
    model = VLJepa.from_pretrained(model_dir, bf16=False).eval()
    writable_folder(out_dir.parent)
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _write_export(model, staging, [label for label in labels if label.strip()])
        if int8:
            quantise_export(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


def _write_export(model: VLJepa, folder: Path, labels: list[str]) -> None:
    config = model.config
    frames, size = config.x_encoder.num_frames, config.x_encoder.image_size
    video = torch.randn(2, frames, 3, size, size)
    with torch.no_grad():
        tokens = model.x_encoder(video)
    query_ids, query_mask = model.predictor.tokenize(["what is happening in the video?", "which way?"])
    text = model.y_encoder.text_model.preprocess(
        ["a red circle moves left", "yes"], prompt=model.y_encoder.document_prompt
    )
    batch, query, length = {0: "batch"}, {0: "batch", 1: "query"}, {0: "batch", 1: "length"}
    jobs = {
        "x_encoder": (_XEncoderGraph(model), {"video": video}, {"video": batch}, "tokens"),
        "predictor": (
            _PredictorGraph(model),
            {"tokens": tokens, "query_ids": query_ids, "query_mask": query_mask},
            {"tokens": batch, "query_ids": query, "query_mask": query},
            "predicted",
        ),
        "y_encoder": (
            _YEncoderGraph(model),
            {"input_ids": text["input_ids"], "attention_mask": text["attention_mask"]},
            {"input_ids": length, "attention_mask": length},
            "text_embedding",
        ),
    }
    decoder = model.y_decoder
    if decoder is not None:
        embedding = F.normalize(torch.randn(2, config.shared_dim), dim=-1)
        rows = torch.tensor([[decoder.bos_row, decoder.eos_row]] * 2)
        jobs["y_decoder"] = (
            _DecoderStepGraph(model),
            {"embedding": embedding, "rows": rows},
            {"embedding": batch, "rows": {0: "batch", 1: "written"}},
            "next_logits",
        )
    graphs = {}
    with progress_bar("exporting ONNX graphs", len(jobs)) as advance:
        for name, (module, example, dynamic, output) in jobs.items():
            graphs[name] = _export_graph(module, example, dynamic, output, folder / f"{name}.onnx")
            advance()
    _text_tokenizer_file(model.predictor.tokenizer, folder / QUERY_TOKENIZER)
    text_tokenizer = model.y_encoder.text_model.tokenizer
    _text_tokenizer_file(text_tokenizer, folder / TEXT_TOKENIZER)
    if labels:
        with torch.no_grad():
            np.save(folder / LABELS_FILE, model.encode_text(labels).numpy())
    decoding = None
    if decoder is not None:
        _text_tokenizer_file(decoder.tokenizer, folder / DECODER_TOKENIZER)
        np.save(folder / DECODER_ROWS_FILE, decoder.vocabulary.tokenizer_ids.numpy())
        decoding = Decoding(
            tokenizer=DECODER_TOKENIZER,
            bos=decoder.bos_row,
            eos=decoder.eos_row,
            max_new_tokens=decoder.config.max_text_tokens + 1,
            no_repeat_ngram_size=decoder.config.no_repeat_ngram_size,
        )
    write_sidecar(
        OnnxSidecar(
            format=FORMAT_VERSION,
            weights="fp32",
            shared_dim=config.shared_dim,
            classification_prompt=config.classification_prompt,
            preprocessing=Preprocessing(
                image_size=size, num_frames=frames, mean=list(config.x_encoder.mean), std=list(config.x_encoder.std)
            ),
            query=TextSpec(tokenizer=QUERY_TOKENIZER, max_tokens=config.predictor.max_query_tokens),
            text=TextSpec(
                tokenizer=TEXT_TOKENIZER,
                max_tokens=model.y_encoder.text_model.max_seq_length,
                prompt=model.y_encoder.document_prompt,
                pad_id=text_tokenizer.pad_token_id or 0,
            ),
            graphs=graphs,
            labels=labels,
            decoding=decoding,
            source={
                "x_encoder_fingerprint": model.x_encoder.fingerprint(),
                "model_fingerprint": model.fingerprint(),  # an index this model built is searched by the export
            },
            versions=_versions(),
        ),
        folder,
    )
