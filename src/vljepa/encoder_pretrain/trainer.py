"""The V-JEPA pretraining loop: AdamW with warmup + cosine, EMA target, JSONL log, exact resume.

V-JEPA: AdamW (no weight decay on biases and norms), LR linear warmup then cosine, weight decay
raised 0.04 -> 0.4 by a cosine schedule, EMA momentum linear 0.998 -> 1.0 over the run, bf16.
Ours: the same loop with a constant weight decay (one fewer schedule to tune at this scale; 0.04 is
V-JEPA's starting value), warmup + cosine to zero from `train/optim.py`, the momentum schedule of
the config, gradient norm clipped at `grad_clip` (10: a guard against spikes only), bf16 autocast
only where the hardware computes it natively (`bf16: auto`, `precision.py`). Every `save_every` steps, at a requested
stop and at the end, the run writes `checkpoint/` atomically: both networks (safetensors),
optimizer, scheduler, sampler position and RNG state; masks are a function of (seed, step). A
resumed run therefore continues bit-exactly, and its log is cut back to the checkpoint so it reads
as one run. The finished run exports the EMA encoder to `<out_dir>/encoder` in transformers format
(see `export.py`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_directory, readable_directory
from ..config import StageConfig, save_json
from ..precision import announce_precision, resolve_precision
from ..progress import console, progress_bar
from ..train.optim import build_scheduler
from ..train.trainer import resolve_device, trim_metrics
from .config import EncoderPretrainConfig
from .data import ClipSampler, load_clips
from .export import save_encoder
from .health import CollapseWatch, check_finite, plot_curves
from .masking import step_masks, token_grid
from .objective import ObjectiveOutput, VJepaObjective, ema_momentum

CHECKPOINT_DIR = "checkpoint"
ENCODER_DIR = "encoder"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
CONFIG_FILE = "encoder_pretrain_config.json"


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (and the mask tokens), none on biases and norms."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]


def lr_schedule(config: EncoderPretrainConfig) -> StageConfig:
    """The run as one cosine stage, for `train/optim.py`'s warmup + cosine schedule."""
    return StageConfig(name="encoder-pretrain", steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                       schedule="cosine", warmup_steps=config.warmup_steps)


class EncoderPretrainer:
    def __init__(self, config: EncoderPretrainConfig, progress: bool = True):
        self.config, self.progress = config, progress
        self.out_dir = Path(config.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.bf16, self.device)
        announce_precision(self.precision)
        torch.manual_seed(config.seed)
        self.objective = VJepaObjective(config).to(self.device)
        self.clips = load_clips(config.data, config.x_encoder, progress)
        self.grid = token_grid(config.x_encoder)
        self.sampler = ClipSampler(len(self.clips), config.seed)
        self.optimizer = torch.optim.AdamW(decay_groups(self.objective.student, config.weight_decay),
                                           lr=config.lr, betas=config.betas)
        self.scheduler = build_scheduler(self.optimizer, lr_schedule(config))
        self.step = 0
        save_json(config, self.out_dir / CONFIG_FILE)

    # --- checkpoints ---------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        def fill(directory: Path) -> None:
            weights = {name: tensor.contiguous() for name, tensor in self.objective.state_dict().items()}
            save_file(weights, str(directory / "objective.safetensors"))
            save_json(self.config, directory / CONFIG_FILE)
            torch.save({"step": self.step, "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                        "torch_rng": torch.get_rng_state()}, directory / "trainer_state.pt")

        atomic_directory(self.out_dir / CHECKPOINT_DIR, fill)

    def _resume(self) -> bool:
        directory = readable_directory(self.out_dir / CHECKPOINT_DIR)
        if directory is None:
            return False
        self.objective.load_state_dict(load_file(str(directory / "objective.safetensors"), device=str(self.device)))
        state = torch.load(directory / "trainer_state.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = state["step"]
        trim_metrics(self.out_dir / METRICS_FILE, self.step)
        console.print(f"resuming from {directory} (step {self.step})")
        return True

    # --- the loop ------------------------------------------------------------------------------

    def _autocast(self):
        return self.precision.autocast(self.device.type)

    def train_step(self) -> tuple[ObjectiveOutput, float]:
        """One optimizer step and one EMA update; returns the objective's output and the grad norm."""
        config = self.config
        video = self.clips[self.sampler.next_batch(config.batch_size)].to(self.device, torch.float32)
        masks = [m.to(self.device) for m in step_masks(config.masks, self.grid, config.batch_size, config.seed, self.step)]
        with self._autocast():
            out = self.objective(video, masks)
        check_finite(out.loss, self.step + 1)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.objective.student.parameters(), config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.objective.update_target(ema_momentum(self.step, config.steps, config.ema))
        self.step += 1
        return out, float(grad_norm)

    def run(self, stop_at_step: int | None = None) -> Path:
        """Train to `config.steps` (from the checkpoint if there is one); return the exported encoder
        directory, or the checkpoint when stopped at `stop_at_step`."""
        config, log_path = self.config, self.out_dir / METRICS_FILE
        if not self._resume():
            log_path.unlink(missing_ok=True)
        self.objective.train()
        watch = CollapseWatch(config.collapse_threshold)
        window_start, window_steps = time.perf_counter(), 0
        with progress_bar("V-JEPA pretraining", config.steps - self.step, self.progress,
                          fields="loss {loss:.4f} | spread {spread:.3f} | {rate:.0f} clips/s") as advance, \
                log_path.open("a") as log:
            while self.step < config.steps and self.step != stop_at_step:
                out, grad_norm = self.train_step()
                window_steps += 1
                rate = window_steps * config.batch_size / max(1e-9, time.perf_counter() - window_start)
                advance(1, loss=out.loss.item(), spread=out.target_std, rate=rate)
                if self.step % config.log_every == 0 or self.step == config.steps:
                    entry = {"global_step": self.step, "loss": out.loss.item(), "mask_losses": out.mask_losses,
                             "mask_tokens": out.mask_tokens,
                             "target_std": out.target_std, "lr": self.scheduler.get_last_lr()[0],
                             "momentum": ema_momentum(self.step - 1, config.steps, config.ema),
                             "grad_norm": grad_norm, "clips_per_s": rate, "precision": self.precision.name}
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
                    watch.check(out.target_std, self.step)
                    window_start, window_steps = time.perf_counter(), 0
                if self.step % config.save_every == 0 or self.step in (stop_at_step, config.steps):
                    self._save_checkpoint()
        if log_path.stat().st_size:
            plot_curves(log_path, self.out_dir / CURVES_FILE)
        if self.step < config.steps:
            return self.out_dir / CHECKPOINT_DIR
        encoder = self.out_dir / ENCODER_DIR
        atomic_directory(encoder, lambda directory: save_encoder(self.objective, directory, config))
        console.print(f"[green]saved[/] {encoder} (transformers VJEPA2; use x_encoder.path={encoder})")
        return encoder


def pretrain_encoder(config: EncoderPretrainConfig, progress: bool = True) -> Path:
    """Pretrain (or resume) and return the exported encoder directory."""
    return EncoderPretrainer(config, progress).run()
