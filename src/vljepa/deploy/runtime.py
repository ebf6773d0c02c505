"""`OnnxVLJepa`: a `vljepa export onnx` folder run by onnxruntime, with no PyTorch in the process.

It answers as `VLJepa` does where the tasks need it (`encode_video`, `encode_text`, `decode`, `inference()`, the
classification prompt), in numpy: frames are preprocessed by `deploy/preprocess.py`, queries and texts are
tokenized by the `tokenizers` library from the folder's tokenizer files, and the graphs run on the CPU
execution provider. Queries are cut at the predictor's limit without special tokens, as `Predictor.tokenize`
does; texts get the sentence encoder's special tokens and document prompt, padded to the longest and cut
at its limit, as sentence-transformers does. `threads` sets onnxruntime's intra-op threads (default: its own
choice, one per core).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ..errors import require_extra
from .preprocess import preprocess_frames
from .sidecar import DECODER_ROWS_FILE, LABELS_FILE, OnnxExportError, OnnxSidecar, read_sidecar


def _normalise(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def _padded(rows: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids (B, L) int64 and mask (B, L) bool; L may be 0."""
    length = max((len(row) for row in rows), default=0)
    ids = np.full((len(rows), length), pad, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, True
    return ids, mask


class OnnxVLJepa:
    def __init__(self, folder: str | Path, threads: int | None = None):
        self.folder = Path(folder)
        self.sidecar: OnnxSidecar = read_sidecar(self.folder)
        onnxruntime = require_extra("onnxruntime", "onnx", "running an ONNX export")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.sessions = {}
        for name, graph in self.sidecar.graphs.items():
            session = onnxruntime.InferenceSession(
                str(self.folder / graph.file), options, providers=["CPUExecutionProvider"]
            )
            inputs = [node.name for node in session.get_inputs()]
            if inputs != graph.inputs:
                raise OnnxExportError(
                    f"{self.folder / graph.file}: inputs {inputs}, the sidecar records {graph.inputs}"
                )
            self.sessions[name] = session
        self.query_tokenizer = Tokenizer.from_file(str(self.folder / self.sidecar.query.tokenizer))
        self.text_tokenizer = Tokenizer.from_file(str(self.folder / self.sidecar.text.tokenizer))
        self.text_tokenizer.enable_truncation(self.sidecar.text.max_tokens)
        self.label_embeddings = np.load(self.folder / LABELS_FILE) if self.sidecar.labels else None
        decoding = self.sidecar.decoding
        if decoding is not None:
            self.decoder_tokenizer = Tokenizer.from_file(str(self.folder / decoding.tokenizer))
            self.decoder_rows = np.load(self.folder / DECODER_ROWS_FILE)
        self._query_ids: dict[str, list[int]] = {}

    @property
    def num_frames(self) -> int:
        return self.sidecar.preprocessing.num_frames

    @property
    def classification_prompt(self) -> str:
        return self.sidecar.classification_prompt

    @property
    def shared_dim(self) -> int:
        return self.sidecar.shared_dim

    @property
    def can_decode(self) -> bool:
        return self.sidecar.decoding is not None

    def fingerprint(self) -> str:
        """`VLJepa.fingerprint()` of the model this was exported from: an index it built is searched with the
        export (searching needs only the Y-encoder, which an int8 export keeps fp32)."""
        fingerprint = self.sidecar.source.get("model_fingerprint")
        if fingerprint is None:
            raise OnnxExportError(f"{self.folder}: this export does not record its model's fingerprint; export again")
        return fingerprint

    @contextmanager
    def inference(self) -> Iterator[OnnxVLJepa]:
        """As `VLJepa.inference()`: the graphs are inference-only already."""
        yield self

    def visual_tokens(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames (B, T, H, W, 3) -> X-encoder tokens (B, N, D)."""
        spec = self.sidecar.preprocessing
        video = np.stack([preprocess_frames(np.asarray(f), spec.image_size, spec.mean, spec.std) for f in frames])
        return self.sessions["x_encoder"].run(None, {"video": video})[0]

    def _query_row(self, query: str | None) -> list[int]:
        if not query:
            return []
        if query not in self._query_ids:
            ids = self.query_tokenizer.encode(query, add_special_tokens=False).ids
            self._query_ids[query] = ids[: self.sidecar.query.max_tokens]
        return self._query_ids[query]

    def predict(self, tokens: np.ndarray, queries: list[str | None]) -> np.ndarray:
        """Visual tokens (B, N, D) and one query per row (None = caption mode) -> unnormalised (B, shared_dim)."""
        ids, mask = _padded([self._query_row(q) for q in queries], pad=0)
        feeds = {"tokens": tokens.astype(np.float32), "query_ids": ids, "query_mask": mask}
        return self.sessions["predictor"].run(None, feeds)[0]

    def encode_video(self, frames: np.ndarray, query: str | list[str | None] | None = None) -> np.ndarray:
        """uint8 frames (B, T, H, W, 3) [+ a query or one per clip] -> L2-normalised (B, shared_dim)."""
        queries = query if isinstance(query, list) else [query] * len(frames)
        return _normalise(self.predict(self.visual_tokens(frames), queries))

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Texts -> L2-normalised Y-encoder embeddings (B, shared_dim)."""
        prompt = self.sidecar.text.prompt or ""
        encoded = self.text_tokenizer.encode_batch([prompt + text for text in texts])
        ids, mask = _padded([e.ids for e in encoded], pad=self.sidecar.text.pad_id)
        feeds = {"input_ids": ids, "attention_mask": mask.astype(np.int64)}
        return _normalise(self.sessions["y_encoder"].run(None, feeds)[0])

    def decode(self, embeddings: np.ndarray, beam_size: int = 1) -> list[str]:
        """Embeddings (B, shared_dim) -> B texts through the Y-decoder graph, greedily, never writing a token
        pair twice (the decoder's `no_repeat_ngram_size`), as `YDecoder.decode` does with a beam of 1."""
        decoding = self.sidecar.decoding
        if decoding is None:
            raise RuntimeError("this ONNX export has no Y-decoder: export a model that has one (vljepa train-decoder)")
        if beam_size != 1:
            raise RuntimeError(f"an ONNX export decodes greedily (beam 1), not with a beam of {beam_size}")
        unit = _normalise(np.asarray(embeddings, dtype=np.float32))
        written = np.zeros((len(unit), 0), dtype=np.int64)
        finished = np.zeros(len(unit), dtype=bool)
        for _ in range(decoding.max_new_tokens):
            logits = self.sessions["y_decoder"].run(None, {"embedding": unit, "rows": written})[0]
            for row, banned in enumerate(_repeated_pairs(written, decoding.no_repeat_ngram_size)):
                logits[row, banned] = -np.inf
            chosen = np.where(finished, decoding.eos, logits.argmax(-1))
            written = np.concatenate([written, chosen[:, None]], axis=1)
            finished |= chosen == decoding.eos
            if finished.all():
                break
        return [self._text(row, decoding.eos) for row in written]

    def _text(self, rows: np.ndarray, eos: int) -> str:
        ended = np.flatnonzero(rows == eos)
        kept = rows[: ended[0]] if len(ended) else rows
        return self.decoder_tokenizer.decode(self.decoder_rows[kept].tolist(), skip_special_tokens=True).strip()


def _repeated_pairs(written: np.ndarray, size: int) -> list[list[int]]:
    """Per row, the next tokens that would repeat an n-gram (n = `size`) already written."""
    if size == 0 or written.shape[1] < size - 1:
        return [[] for _ in written]
    banned = []
    for row in written.tolist():
        tail = tuple(row[len(row) - size + 1 :]) if size > 1 else ()
        banned.append([row[i + size - 1] for i in range(len(row) - size + 1) if tuple(row[i : i + size - 1]) == tail])
    return banned
