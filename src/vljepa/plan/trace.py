"""One rank's training step of a VL-JEPA model, traced on fake tensors: the bytes it holds at its peak.

Paper: gives the recipe (batches of 24k and 12k samples, 1 to 32 frames) but no memory figures.
Ours: the step the trainer runs (`train/grad_cache.py`), replayed op by op on the model's parts as
`vljepa info` builds them (`model/info.py`: transformers' own classes and our predictor), inside a
`FakeTensorMode`, so a paper-size step costs shapes, not memory, and a CPU, not a GPU. `LiveBytes`
counts every tensor the step creates. The step, as the trainer does it with gradient caching:
- the micro-batch's X-encoder tokens: read from the feature cache, or (`features: online`) encoded by the
  frozen X-encoder without gradients;
- pass 1: the predictor and the Y-encoder without gradients, one micro-batch at a time, keeping only the
  embeddings; not traced: it runs pass 2's forward without keeping activations, so it never holds more;
- the rank's embeddings (`local_rows` x shared_dim) and, under torchrun, the gathered global batch; the
  InfoNCE loss over it (every rank computes the whole B x B logits) and its backward;
- pass 2: micro-batches with gradients, each with its backward (where the activations peak), with
  `gradient_checkpointing` as the trainer applies it (the Llama, and the text model when it trains). Two
  are traced: the second runs beside the gradients the first left, which a one-chunk step never holds;
- AdamW's step, traced apart on fake tensors of the trained sizes: its two fp32 moments per trained weight
  live throughout, and the step adds temporaries for every tensor at once when it runs foreach (the
  default on a GPU) or for one or two tensors at a time (the default on a CPU).
Weights are fp32 (the trainer keeps fp32 weights and autocasts to bf16). Under bf16 the step runs inside
CPU autocast on the fake tensors, whose cast rules match CUDA's for the matmuls that dominate; on a GPU
the step also pays the CUDA context and the caching allocator's slack, which the planner's margin
covers. Cut from the count: the data loader, the tokenizer and the Y-decoder (trained apart).
The loss and pass 2 are traced apart: pass 2 does not depend on the rank's rows (so not on the GPU count),
and it is the slow part: about 0.1 ms of Python per op, and 74,000 ops per traced pair of micro-batches of
the paper model, most of them EmbeddingGemma's (`profile_table.py` keeps traced pass-2 profiles).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from ..config import ModelConfig
from ..model.info import Skeleton, build_skeleton
from ..model.losses import info_nce
from ..registry import Architectures
from .live_bytes import LiveBytes

FP32 = 4  # bytes of a trained weight: the trainer keeps fp32 weights and autocasts


@dataclass(frozen=True)
class StepShape:
    """What a rank's step holds besides its micro-batch: its rows, the global batch, the clip and text lengths."""

    frames: int
    local_rows: int  # this rank's share of the global batch
    global_batch: int  # the rows of the InfoNCE loss (every rank computes all of them)
    query_tokens: int
    text_tokens: int
    checkpointing: bool
    bf16: bool
    online_features: bool  # the X-encoder runs in the step (features: online) instead of a cache read


@dataclass(frozen=True)
class WeightBytes:
    """One rank's bytes that do not depend on the step (nothing sharded)."""

    frozen: int  # the X-encoder (its unused masked predictor too: it is loaded) and a frozen text model
    trained: int
    adamw_moments: int  # two fp32 moments per trained weight
    adamw_step: int  # alive during AdamW's step besides weights and moments: the gradients and its temporaries
    largest_trained_layer: int  # the biggest unit FSDP gathers whole for its forward and backward


@dataclass(frozen=True)
class ChunkShape:
    """What pass 2's micro-batches depend on: the clip, the texts and the settings (not the rank's rows)."""

    frames: int
    query_tokens: int
    text_tokens: int
    checkpointing: bool
    bf16: bool
    online_features: bool


def chunk_shape(shape: StepShape) -> ChunkShape:
    return ChunkShape(
        shape.frames, shape.query_tokens, shape.text_tokens, shape.checkpointing, shape.bf16, shape.online_features
    )


@dataclass(frozen=True)
class Lines:
    """Bytes alive as lines `fixed + micro_batch x per_sample`, one per op; kept: the lines that are the highest at
    some micro-batch of 1 or more (the upper envelope), so the peak at any micro-batch is the highest of these."""

    fixed: np.ndarray
    per_sample: np.ndarray

    @classmethod
    def envelope(cls, fixed: np.ndarray, per_sample: np.ndarray) -> Lines:
        """From the highest line at a micro-batch of 1 (the steepest of ties), to the steeper line that overtakes
        it first, and so on until no steeper line is left."""
        at_one = fixed + per_sample
        tied = np.flatnonzero(at_one == at_one.max())
        line, where = int(tied[np.argmax(per_sample[tied])]), 1.0
        kept = []
        while True:
            kept.append(line)
            steeper = np.flatnonzero(per_sample > per_sample[line])
            if not len(steeper):
                return cls(fixed[kept], per_sample[kept])
            crossing = np.maximum((fixed[line] - fixed[steeper]) / (per_sample[steeper] - per_sample[line]), where)
            first = steeper[crossing == crossing.min()]
            line, where = int(first[np.argmax(per_sample[first])]), float(crossing.min())

    def peak(self, micro_batch: int) -> int:
        return int((self.fixed + micro_batch * self.per_sample).max())


@dataclass(frozen=True)
class ChunkProfile:
    """Pass 2's bytes after each op, as lines in the micro-batch, traced at micro-batches of 2 and 3 (one sample
    takes shortcuts in transformers, so its ops differ), whose ops are the same. (A peak cannot be extended alone:
    where it falls moves with the micro-batch, e.g. from the gradients at the end of the backward to the
    activations at its start.)"""

    every_chunk: Lines  # both traced micro-batches: the second runs beside the gradients the first left
    first_chunk: Lines  # the first alone: all a one-chunk step runs


@dataclass(frozen=True)
class PassesProfile:
    """The step's passes: the loss over the rank's rows, then pass 2's micro-batches beside what the loss left."""

    loss_peak: int  # the InfoNCE loss and its backward (no micro-batch in it)
    after_loss: int  # alive from then on: the rows' embeddings and their gradients
    chunks: ChunkProfile

    def peak(self, micro_batch: int, chunks: int) -> int:
        lines = self.chunks.every_chunk if chunks > 1 else self.chunks.first_chunk
        return max(self.loss_peak, self.after_loss + lines.peak(micro_batch))


def _bytes(parameters) -> int:
    return sum(p.numel() * p.element_size() for p in parameters)


def adamw_step_bytes(trained: list[torch.Tensor], foreach: bool) -> int:
    """The gradients, and the temporaries of AdamW's step, traced on fake tensors of the trained tensors' sizes (one
    tensor at a time holds a tensor's temporaries and the previous one's last). Foreach holds them for every tensor
    at once, in proportion to their bytes: traced on two tensors and scaled, which saves tracing hundreds."""
    sizes = [p.numel() for p in trained]
    if not sizes:
        return 0
    sample = sizes if not foreach else [1024, 4096]
    with FakeTensorMode():
        parameters = [torch.nn.Parameter(torch.empty(n)) for n in sample]
        for parameter in parameters:
            parameter.grad = torch.zeros_like(parameter)
        optimizer = torch.optim.AdamW(parameters, weight_decay=0.05, foreach=foreach)
        optimizer.step()  # the moments
        with LiveBytes() as counter:
            optimizer.step()
    temporaries = counter.peak * sum(sizes) / sum(sample)
    return FP32 * sum(sizes) + int(temporaries)


class TracedModel:
    """A model's parts on fake tensors, built once, frozen and trained as the trainer does."""

    def __init__(self, config: ModelConfig, architectures: Architectures):
        self.config = config
        with torch.device("meta"):  # shapes only: weight initialisers would read values that fake tensors lack
            self.skeleton = build_skeleton(config, architectures)
        self.fake_mode = FakeTensorMode(allow_non_fake_inputs=True)  # non-fake: the meta weights `to_empty` replaces
        with self.fake_mode:
            for part in (self.skeleton.vjepa2, self.skeleton.predictor, self.skeleton.text):
                part.to_empty(device="cpu")
        skeleton = self.skeleton
        skeleton.vjepa2.requires_grad_(False).eval()
        skeleton.text.requires_grad_(False)
        text_trains = config.y_encoder.lr_multiplier != 0
        trained_parts = [skeleton.predictor, skeleton.text.head]
        trained_parts += [skeleton.text.transformer, skeleton.text.dense] if text_trains else []
        for part in trained_parts:
            part.requires_grad_(True).train()
        # the models `train.trainer.enable_gradient_checkpointing` switches: the Llama, a training text model
        self.checkpointed = [skeleton.predictor.llama] + ([skeleton.text.transformer] if text_trains else [])
        self.trained = [p for part in trained_parts for p in part.parameters()]
        layers = list(skeleton.predictor.llama.layers)
        if text_trains:
            layers += next(m for m in skeleton.text.transformer.modules() if isinstance(m, torch.nn.ModuleList))
        self.largest_layer = max(_bytes(layer.parameters()) for layer in layers)

    def weights(self, foreach_adamw: bool) -> WeightBytes:
        """AdamW foreach, as on a GPU, or one tensor at a time, as on a CPU."""
        frozen = _bytes(self.skeleton.vjepa2.parameters())
        frozen += _bytes(p for p in self.skeleton.text.parameters() if not p.requires_grad)
        trained = _bytes(self.trained)
        return WeightBytes(
            frozen, trained, 2 * trained, adamw_step_bytes(self.trained, foreach_adamw), self.largest_layer
        )

    def _timeline(self, shape: ChunkShape, micro_batch: int) -> tuple[np.ndarray, int]:
        for model in self.checkpointed:
            if shape.checkpointing:
                model.gradient_checkpointing_enable({"use_reentrant": False})
            else:
                model.gradient_checkpointing_disable()
        dim = self.skeleton.predictor.out_proj.out_features
        with self.fake_mode:
            gradients = torch.empty(2 * micro_batch, dim), torch.empty(2 * micro_batch, dim)  # the loss's: not counted
            with LiveBytes() as counter:
                _chunks(self.skeleton, shape, micro_batch, gradients, counter)
        for parameter in self.trained:
            parameter.grad = None
        return np.asarray(counter.timeline, dtype=np.float64), counter.chunk_end

    def chunks(self, shape: ChunkShape) -> ChunkProfile:
        """Pass 2's timeline as lines in the micro-batch (two traces: the slow part of planning)."""
        (two, first), (three, _) = self._timeline(shape, 2), self._timeline(shape, 3)
        if two.shape != three.shape:
            raise RuntimeError(f"the step ran {len(two)} ops at a micro-batch of 2 but {len(three)} at 3")
        fixed, per_sample = 3 * two - 2 * three, three - two
        return ChunkProfile(Lines.envelope(fixed, per_sample), Lines.envelope(fixed[:first], per_sample[:first]))

    def loss(self, local_rows: int, global_batch: int) -> tuple[int, int]:
        """(peak, bytes left alive) of the InfoNCE loss and its backward over a rank's rows."""
        dim = self.skeleton.predictor.out_proj.out_features
        with self.fake_mode, LiveBytes() as counter:
            rows = [torch.empty(local_rows, dim).requires_grad_() for _ in range(2)]  # predicted, target
            copies = global_batch // local_rows  # torchrun: every rank's rows, gathered with gradient
            gathered = [torch.cat([r] * copies) if copies > 1 else r for r in rows]
            info_nce(*gathered, self.config.temperature, torch.eye(global_batch, dtype=torch.bool)).backward()
            del gathered
            left = counter.live
        return counter.peak, left

    def passes(self, shape: StepShape, chunks: ChunkProfile | None = None) -> PassesProfile:
        """The loss, traced, and pass 2's `chunks` (traced when not given)."""
        return PassesProfile(
            *self.loss(shape.local_rows, shape.global_batch), chunks or self.chunks(chunk_shape(shape))
        )


def _chunks(
    skeleton: Skeleton, shape: ChunkShape, m: int, gradients: tuple[torch.Tensor, torch.Tensor], counter: LiveBytes
) -> None:
    """Grad-cache's pass 2 over two micro-batches of `m`, each with its backward from the loss's `gradients`."""
    query_ids = torch.zeros(m, shape.query_tokens, dtype=torch.long)
    query_mask = torch.ones(m, shape.query_tokens, dtype=torch.bool)
    text_ids = torch.zeros(m, shape.text_tokens, dtype=torch.long)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if shape.bf16 else nullcontext()
    x_config = skeleton.vjepa2.config

    def tokens() -> torch.Tensor:
        if not shape.online_features:  # read from the feature cache, in fp32
            grid = -(-shape.frames // x_config.tubelet_size) * (x_config.crop_size // x_config.patch_size) ** 2
            return torch.empty(m, grid, x_config.hidden_size)
        with torch.no_grad(), autocast:
            video = skeleton.video(shape.frames, m)
            return skeleton.vjepa2(pixel_values_videos=video, skip_predictor=True).last_hidden_state

    def embed() -> tuple[torch.Tensor, torch.Tensor]:
        with autocast:
            return skeleton.predictor(tokens(), query_ids, query_mask).float(), skeleton.text(text_ids).float()

    for chunk in range(2):  # the second chunk runs beside the first one's gradients
        chunk_predicted, chunk_target = embed()
        rows = slice(chunk * m, (chunk + 1) * m)
        torch.autograd.backward([chunk_predicted, chunk_target], [gradients[0][rows], gradients[1][rows]])
        del chunk_predicted, chunk_target
        if chunk == 0:
            counter.end_chunk()
