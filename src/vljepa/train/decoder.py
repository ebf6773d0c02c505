"""Training the Y-decoder of a trained VL-JEPA model: invert its Y-encoder, then adapt to its predictor.

Paper: the decoder is trained separately from the predictor and used only at inference; how is not
described. Ours, in two phases over one manifest (`vljepa train-decoder`):
1. inversion: pairs (Y-encoder embedding of a text, the text) for every distinct caption, answer
   and class name of the manifest; the decoder's input noise (`YDecoderConfig.noise_std`) makes it
   learn a neighbourhood of each text;
2. adaptation: the same pairs mixed one to one with (predictor output for a training sample, its
   target text), because at inference the decoder reads predictions, which lie off the text
   embeddings by a model-specific error. The predictor and Y-encoder stay fixed throughout.
Linear warmup then cosine decay over both phases, AdamW with decay on matrices only, precision chosen
like the main trainer's: the schedule, the groups, the update and the precision come from the shared
substrate (`substrate/optim.py`, `core/precision.py`) as in every loop; no checkpoint (a run takes minutes). The
decoder is written to `<model>/y_decoder`, where `VLJepa.from_pretrained` finds it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import Bf16Setting, ReportTo, check_device, check_report_to, to_dict
from ..core.atomic import atomic_directory, writable_folder
from ..core.config_loader import CheckedConfig, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from ..core.precision import Precision, announce_precision, resolve_precision
from ..core.progress import console, progress_bar
from ..data.feature_cache import FeatureCache, default_cache_dir
from ..errors import ConfigError
from ..model.causal_lm import corpus_vocabulary
from ..model.vljepa import DECODER_DIR, VLJepa
from ..model.y_decoder import YDecoder, YDecoderConfig
from ..substrate.device import resolve_device
from ..substrate.optim import apply_gradients, build_adamw, build_schedule, decay_groups
from ..substrate.trackers import Trackers
from ..tasks.embed import embed_texts, predict_tokens
from .dataset import FeatureTable, load_samples
from .samples import Sample

LOG_FILE = "train_log.json"


@dataclass
class DecoderTrainConfig(CheckedConfig):
    model: str = ""  # a trained VL-JEPA directory (e.g. runs/demo/model/final)
    train_manifest: str = ""  # its texts (captions, answers, labels) and, for adaptation, its clips
    out_dir: str | None = None  # default: <model>/y_decoder
    cache_dir: str | None = None
    inversion_steps: NonNegativeInt = 1500
    adaptation_steps: NonNegativeInt = 500
    max_adaptation_samples: PositiveInt = 20000  # predictor outputs computed for the adaptation phase
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 2e-3
    warmup_steps: NonNegativeInt = 50
    weight_decay: NonNegativeFloat = 0.01
    seed: NonNegativeInt = 0
    bf16: Bf16Setting = "auto"  # bf16 autocast where the hardware computes it natively (core/precision.py)
    device: str = "auto"
    decoder: YDecoderConfig = field(default_factory=YDecoderConfig)  # shared_dim is taken from the model
    report_to: ReportTo = field(default_factory=list)  # trackers of the per-step log, in `<out_dir>_logs/`

    def check(self) -> None:
        check_report_to(self.report_to)
        check_device(self.device)
        if self.inversion_steps + self.adaptation_steps < 1:
            raise ConfigError("inversion_steps, adaptation_steps: at least one step is needed in all")


@dataclass
class TextPairs:
    """Embeddings (n, shared_dim) and the text each should decode to."""

    embeddings: torch.Tensor
    texts: list[str]

    def draw(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        rows = torch.randint(len(self.texts), (count,), generator=generator)
        return self.embeddings[rows], [self.texts[i] for i in rows.tolist()]


@dataclass
class Phase:
    """`steps` steps whose batches are split equally between the `sources`."""

    name: str
    sources: list[TextPairs]
    steps: int

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        share = max(1, batch_size // len(self.sources))
        drawn = [source.draw(share, generator) for source in self.sources]
        return torch.cat([e for e, _ in drawn]), [t for _, texts in drawn for t in texts]


def fit_decoder(
    decoder: YDecoder,
    phases: list[Phase],
    config: DecoderTrainConfig,
    progress: bool = True,
    trackers: Trackers | None = None,
) -> list[dict]:
    """Train through the phases in order under one warmup + cosine schedule; returns the per-step log, each
    entry also sent to `trackers` when given."""
    total = sum(phase.steps for phase in phases)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = decoder_optimizer(decoder, config.lr, config.weight_decay)
    scheduler = build_schedule(optimizer, "cosine", config.warmup_steps, total)
    precision = resolve_precision(config.bf16, decoder.device)
    announce_precision(precision)
    decoder.train()
    log, step = [], 0
    with progress_bar("training the Y-decoder", total, enabled=progress, fields="{phase} loss {loss:.3f}") as advance:
        for phase in phases:
            for _ in range(phase.steps):
                loss = decoder_step(
                    decoder, optimizer, scheduler, *phase.batch(config.batch_size, generator), precision
                )
                entry = {
                    "step": step,
                    "phase": phase.name,
                    "loss": loss.item(),
                    "lr": scheduler.get_last_lr()[0],
                    "precision": precision.name,
                }
                log.append(entry)
                if trackers is not None:
                    trackers.log(entry, step)
                advance(phase=phase.name, loss=loss.item())
                step += 1
    decoder.eval()
    return log


def decoder_optimizer(decoder: YDecoder, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW (default betas) with the substrate's groups: weight decay on matrices only."""
    return build_adamw(decay_groups(decoder.named_parameters(), lr, weight_decay), lr)


def decoder_step(
    decoder: YDecoder,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    embeddings: torch.Tensor,
    texts: list[str],
    precision: Precision,
) -> torch.Tensor:
    """One optimizer step (unclipped, as the decoder always trained) on a batch of (embedding, text) pairs;
    returns the loss."""
    with precision.autocast(decoder.device.type):
        loss = decoder.loss(embeddings, texts)
    loss.backward()
    apply_gradients(decoder.parameters(), optimizer, scheduler, grad_clip=None)
    return loss


def measure_decoder_step_seconds(
    config: DecoderTrainConfig, texts: list[str], shared_dim: int, device: torch.device | str = "cpu", steps: int = 3
) -> float:
    """Seconds per training step of the Y-decoder `config` describes, over the vocabulary of `texts`, timed
    on a throw-away decoder with random input embeddings after one untimed step (the global RNG is untouched)."""
    texts = list(dict.fromkeys(texts))
    decoder_config = YDecoderConfig(
        **{
            **to_dict(config.decoder),
            "shared_dim": shared_dim,
            "vocabulary": corpus_vocabulary(texts, config.decoder.tokenizer),
        }
    )
    with torch.random.fork_rng():
        decoder = YDecoder(decoder_config).to(device).train()
        optimizer = decoder_optimizer(decoder, 0.0, config.weight_decay)
        precision = resolve_precision(config.bf16, decoder.device)
        batch = [texts[i % len(texts)] for i in range(config.batch_size)]
        embeddings = F.normalize(torch.randn(config.batch_size, shared_dim, device=decoder.device), dim=-1)
        for step in range(steps + 1):
            if step == 1:
                start = time.perf_counter()
            decoder_step(decoder, optimizer, None, embeddings, batch, precision)
    return (time.perf_counter() - start) / steps


def inversion_pairs(model: VLJepa, texts: list[str]) -> TextPairs:
    """Every distinct text with its Y-encoder embedding."""
    texts = list(dict.fromkeys(texts))
    return TextPairs(embed_texts(model, texts), texts)


def adaptation_pairs(model: VLJepa, samples: list[Sample], table: FeatureTable, limit: int, seed: int) -> TextPairs:
    """Predictor outputs for (at most `limit`, seeded) training samples, with their targets."""
    if len(samples) > limit:
        keep = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))[:limit]
        samples = [samples[i] for i in sorted(keep.tolist())]
    return TextPairs(
        predict_tokens(model, table.tokens(samples), [s.query for s in samples]), [s.target for s in samples]
    )


def fit_model_decoder(
    model: VLJepa,
    config: DecoderTrainConfig,
    cache: FeatureCache,
    progress: bool = True,
    trackers: Trackers | None = None,
) -> tuple[YDecoder, list[dict]]:
    """Train a Y-decoder for an in-memory model on `config.train_manifest`; returns it and its log."""
    torch.manual_seed(config.seed)
    by_kind, table, _ = load_samples(config.train_manifest, cache, model.config.classification_prompt, progress)
    samples = [s for kind in by_kind.values() for s in kind]
    inversion = inversion_pairs(model, [s.target for s in samples])
    predicted = adaptation_pairs(model, samples, table, config.max_adaptation_samples, config.seed)
    console.print(f"Y-decoder corpus: {len(inversion.texts)} distinct texts; {len(predicted.texts)} predictor outputs")
    vocabulary = corpus_vocabulary(inversion.texts, config.decoder.tokenizer)
    decoder_config = YDecoderConfig(
        **{**to_dict(config.decoder), "shared_dim": model.config.shared_dim, "vocabulary": vocabulary}
    )
    decoder = YDecoder(decoder_config).to(model.device)
    log = fit_decoder(
        decoder,
        [
            Phase("inversion", [inversion], config.inversion_steps),
            Phase("adaptation", [inversion, predicted], config.adaptation_steps),
        ],
        config,
        progress,
        trackers,
    )
    return decoder, log


def train_decoder(config: DecoderTrainConfig, progress: bool = True) -> Path:
    """Train a Y-decoder for the checkpoint `config.model`; saves it into `config.out_dir` (default
    `<model>/y_decoder`) with its training log, and returns that directory."""
    if not config.model or not config.train_manifest:
        raise ValueError("train-decoder needs model=<trained VL-JEPA directory> and train_manifest=<manifest>")
    out_dir = Path(config.out_dir or Path(config.model) / DECODER_DIR)
    writable_folder(out_dir.parent)  # before any training; the decoder's folder appears whole at the end
    model = VLJepa.from_pretrained(config.model, device=str(resolve_device(config.device)), bf16=config.bf16)
    cache = FeatureCache(config.cache_dir or default_cache_dir(), model.x_encoder)
    trackers = None
    if config.report_to:
        logs = writable_folder(out_dir.with_name(f"{out_dir.name}_logs"))
        trackers = Trackers(config.report_to, logs, None, to_dict(config))
    try:
        decoder, log = fit_model_decoder(model, config, cache, progress, trackers)
    finally:
        if trackers is not None:
            trackers.close()
    save_decoder(out_dir, decoder, config, log)
    return out_dir


def save_decoder(directory: Path, decoder: YDecoder, config: DecoderTrainConfig, log: list[dict]) -> None:
    """The trained decoder and its training log, written as one atomic folder."""

    def write(folder: Path) -> None:
        decoder.save_pretrained(folder)
        (folder / LOG_FILE).write_text(json.dumps({"config": to_dict(config), "log": log}))

    atomic_directory(directory, write)
