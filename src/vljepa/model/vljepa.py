"""VLJepa: the four parts wired together (X-encoder, predictor, Y-encoder, and the optional Y-decoder).

Paper: a frozen V-JEPA 2 encoder feeds a bidirectional Llama predictor that reads the visual tokens
and an optional text query and outputs one vector; a text encoder embeds the answer; InfoNCE pulls
the two together. Classification, retrieval and multiple-choice VQA compare vectors and never decode.
Ours: the same wiring. `encode_video`/`encode_text` follow open_clip's `normalize=` convention;
`predict` works from visual tokens so training and evaluation can reuse cached X-encoder features.
Embeddings leave the model in float32 whatever the autocast inside. Inference (`with model.inference():`)
runs in eval mode without gradients, in the precision `use_precision` chose for the model's device (bf16
only where the hardware computes it natively, like training; `from_pretrained` chooses `auto`), and
restores the previous mode even when it raises.
Checkpoints store what trains (predictor, Y-encoder head, the text model unless frozen) as
safetensors, and the frozen X-encoder by reference (its config plus a weight fingerprint). The
Y-decoder is trained afterwards (`vljepa train-decoder`) into the `y_decoder/` subfolder of a
checkpoint; `from_pretrained` attaches it when present and `decode` turns embeddings into text.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import ModelConfig, read_config_json, to_dict, write_config_json
from ..core.atomic import atomic_write
from ..core.eval_mode import evaluating
from ..core.precision import Precision, announce_precision, resolve_precision
from ..errors import CheckpointError
from .losses import batch_loss
from .predictor import Predictor
from .x_encoder import XEncoder
from .y_decoder import YDecoder
from .y_encoder import YEncoder

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DECODER_DIR = "y_decoder"


@dataclass
class VLJepaOutput:
    predicted: torch.Tensor  # (B, shared_dim), unnormalised
    target: torch.Tensor | None  # (B, shared_dim), unnormalised
    loss: torch.Tensor | None


class VLJepa(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.x_encoder = XEncoder(config.x_encoder)
        predictor_config = config.predictor
        if predictor_config.llama_path:
            self.predictor = Predictor.from_llama(
                predictor_config.llama_path,
                predictor_config.last_n_layers,
                predictor_config,
                self.x_encoder.embed_dim,
                config.shared_dim,
            )
        else:
            self.predictor = Predictor(predictor_config, self.x_encoder.embed_dim, config.shared_dim)
        self.y_encoder = YEncoder(config.y_encoder, config.shared_dim)
        log_inverse_temperature = torch.tensor(math.log(1.0 / config.temperature))
        if config.learnable_temperature:
            self.log_inverse_temperature = nn.Parameter(log_inverse_temperature)
        else:
            self.register_buffer("log_inverse_temperature", log_inverse_temperature)
        self.y_decoder: YDecoder | None = None  # trained separately; see `attach_decoder`
        self.inference_precision = Precision(False, "fp32 (no precision chosen for inference)")

    @property
    def device(self) -> torch.device:
        return self.predictor.out_proj.weight.device

    @property
    def classification_prompt(self) -> str:
        """The query label samples are trained under, and classification asks by default."""
        return self.config.classification_prompt

    @property
    def num_frames(self) -> int:
        """Frames per clip the X-encoder reads."""
        return self.config.x_encoder.num_frames

    @property
    def shared_dim(self) -> int:
        return self.config.shared_dim

    @property
    def can_decode(self) -> bool:
        return self.y_decoder is not None

    @property
    def temperature(self) -> torch.Tensor:
        return torch.exp(-self.log_inverse_temperature)

    def use_precision(self, bf16: bool | str = "auto", announce: bool = True) -> Precision:
        """Choose the precision of `inference()` for the model's device: auto, true or false (as in training)."""
        self.inference_precision = resolve_precision(bf16, self.device)
        if announce:
            announce_precision(self.inference_precision)
        return self.inference_precision

    @contextmanager
    def inference(self) -> Iterator[VLJepa]:
        """Eval mode, no gradients, the chosen precision; the previous train/eval mode is restored on exit."""
        with evaluating(self), torch.no_grad(), self.inference_precision.autocast(self.device.type):
            yield self

    def visual_tokens(self, frames: torch.Tensor | np.ndarray | list) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> X-encoder tokens (B, N, D). A tensor, an array, or a list of clips of
        any sizes (the preprocessing resizes each)."""
        video = torch.stack([self.x_encoder.preprocess(torch.as_tensor(f)) for f in frames]).to(self.device)
        return self.x_encoder(video)

    def predict(self, visual_tokens: torch.Tensor, queries: list[str | None] | None = None) -> torch.Tensor:
        """Visual tokens (B, N, D) and queries (None = caption mode) -> predicted embeddings (B, shared_dim)."""
        queries = queries if queries is not None else [None] * len(visual_tokens)
        ids, mask = self.predictor.tokenize(queries, self.device)
        return self.predictor(visual_tokens.to(self.device), ids, mask).float()

    def encode_video(
        self,
        frames: torch.Tensor | np.ndarray | list,
        query: str | list[str | None] | None = None,
        normalize: bool = True,
    ) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) [+ a query or one per clip] -> (B, shared_dim)."""
        queries = query if isinstance(query, list) else [query] * len(frames)
        predicted = self.predict(self.visual_tokens(frames), queries)
        return F.normalize(predicted, dim=-1) if normalize else predicted

    def encode_text(self, texts: list[str], normalize: bool = True) -> torch.Tensor:
        embedded = self.y_encoder(texts).float()
        return F.normalize(embedded, dim=-1) if normalize else embedded

    def attach_decoder(self, decoder: YDecoder) -> None:
        if decoder.config.shared_dim != self.config.shared_dim:
            raise ValueError(
                f"Y-decoder reads {decoder.config.shared_dim}-d embeddings, the model makes "
                f"{self.config.shared_dim}-d ones"
            )
        self.y_decoder = decoder.to(self.device)

    def decode(self, embeddings: torch.Tensor | np.ndarray, beam_size: int = 1) -> list[str]:
        """Predicted (or text) embeddings (B, shared_dim) -> B texts, through the Y-decoder."""
        if self.y_decoder is None:
            raise RuntimeError(
                "this model has no Y-decoder: train one with `vljepa train-decoder` "
                "(it is saved into the model directory and loaded with it)"
            )
        with self.inference_precision.autocast(self.device.type):
            return self.y_decoder.decode(torch.as_tensor(embeddings).float().to(self.device), beam_size=beam_size)

    def loss(self, predicted: torch.Tensor, target: torch.Tensor, targets: list[str]) -> VLJepaOutput:
        """The configured loss (`ModelConfig.loss`) of predicted and target embeddings whose target texts are
        `targets`: what `forward` returns and what the trainer backpropagates (also over a gathered batch)."""
        return VLJepaOutput(
            predicted, target, batch_loss(self.config.loss, predicted, target, self.temperature, targets)
        )

    def forward(
        self, visual_tokens: torch.Tensor, queries: list[str | None], targets: list[str] | None = None
    ) -> VLJepaOutput:
        predicted = self.predict(visual_tokens, queries)
        if targets is None:
            return VLJepaOutput(predicted, None, None)
        return self.loss(predicted, self.y_encoder(targets), targets)

    # --- checkpoints -------------------------------------------------------------------------------

    def trained_part(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The entries of a state dict of this model that a checkpoint stores: all but the parts stored by
        reference (X-encoder; a frozen text model) or apart (Y-decoder)."""
        skip = ["x_encoder.", "y_decoder."] + (["y_encoder.text_model."] if self.y_encoder.frozen_text_model else [])
        return {k: v for k, v in state.items() if not any(k.startswith(s) for s in skip)}

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        return self.trained_part(self.state_dict())

    def fingerprint(self) -> str:
        """Hash of what a clip's caption-mode prediction and a text's embedding depend on: the config, the
        X-encoder's weight fingerprint and every trained weight (not the Y-decoder). A video index records it."""
        digest = hashlib.sha256(json.dumps(to_dict(self.config), sort_keys=True, default=str).encode())
        digest.update(self.x_encoder.fingerprint().encode())
        for name, tensor in sorted(self.trained_state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        return digest.hexdigest()[:16]

    def save_pretrained(self, directory: str | Path, trained_state: dict[str, torch.Tensor] | None = None) -> None:
        """Write the trained weights: `trained_state` if given (a sharded trainer gathers them), else this model's."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        trained_state = self.trained_state_dict() if trained_state is None else trained_state
        state = {k: v.detach().cpu().contiguous() for k, v in trained_state.items()}
        metadata = {"x_encoder_fingerprint": self.x_encoder.fingerprint()}
        atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp), metadata=metadata))
        write_config_json(self.config, directory / CONFIG_FILE)
        if self.y_decoder is not None:
            self.y_decoder.save_pretrained(directory / DECODER_DIR)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu", bf16: bool | str = "auto") -> VLJepa:
        """A trained model on `device`, its inference precision chosen by `bf16` (auto, true or false)."""
        directory = Path(directory)
        model = cls(read_config_json(ModelConfig, directory / CONFIG_FILE, "vljepa checkpoint"))
        model.load_trained_state(directory / WEIGHTS_FILE)
        if (directory / DECODER_DIR).is_dir():
            model.attach_decoder(YDecoder.from_pretrained(directory / DECODER_DIR))
        model.to(device).eval().use_precision(bf16)
        return model

    def load_trained_state(self, path: str | Path) -> None:
        """Load `save_pretrained`'s weights (checked by `read_trained_state`)."""
        self.load_state_dict(self.read_trained_state(path), strict=False)

    def read_trained_state(self, path: str | Path) -> dict[str, torch.Tensor]:
        """`save_pretrained`'s weights, checked against this model: a damaged file, or one saved for another
        X-encoder or architecture, is a `CheckpointError` naming it."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "pt") as handle:
                expected = (handle.metadata() or {}).get("x_encoder_fingerprint")
            state = load_file(str(path))
        except SafetensorError as error:
            raise CheckpointError(f"{path}: not a readable safetensors file ({error}); is it truncated?") from error
        if expected and expected != self.x_encoder.fingerprint():
            raise CheckpointError(
                f"{path}: trained with X-encoder weights {expected}, "
                f"but the configured X-encoder has {self.x_encoder.fingerprint()}"
            )
        wanted = set(self.trained_state_dict())
        missing, unexpected = wanted - set(state), set(state) - wanted
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: missing keys {sorted(missing)[:10]}, unexpected keys {sorted(unexpected)[:10]}"
            )
        return state
