"""The V-JEPA pretraining loop: AdamW with warmup + cosine, EMA target, JSONL log, exact resume.

V-JEPA: AdamW (no weight decay on biases and norms), LR linear warmup then cosine, weight decay
raised 0.04 -> 0.4 by a cosine schedule, EMA momentum linear 0.998 -> 1.0 over the run, bf16.
Ours: the same loop with a constant weight decay (one fewer schedule to tune at this scale; 0.04 is
V-JEPA's starting value), the momentum schedule of the config, gradient norm clipped at `grad_clip`
(10: a guard against spikes only). What every training loop shares comes from `substrate/`: the
device, the no-decay parameter groups, warmup + cosine to zero (`optim.py`), the run folder's lock, and
the resumable state (`state.py`); bf16 autocast only where the hardware computes it natively (`bf16:
auto`) from `core/precision.py`. Every `save_every` steps, at a requested stop and at the end, the run
writes `checkpoint/` atomically: both networks (safetensors), optimizer, scheduler, sampler position and
RNG state; masks are a function of (seed, step). A resumed run therefore continues bit-exactly, and its
log (`substrate/metrics.py`) is cut back to the checkpoint so it reads as one run. The finished run
exports the EMA encoder to `<out_dir>/encoder` in transformers format (see `export.py`).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..config import save_json, to_dict
from ..core.atomic import atomic_directory, writable_folder
from ..core.precision import announce_precision, resolve_precision
from ..core.progress import console, progress_bar
from ..substrate.device import resolve_device
from ..substrate.metrics import METRICS_FILE, MetricsLog
from ..substrate.optim import apply_gradients, build_adamw, build_schedule, decay_groups
from ..substrate.run_dir import RunDirectory
from ..substrate.state import CHECKPOINT_DIR, RngState, TrainingState, load_training_state, save_training_state
from .config import EncoderPretrainConfig
from .data import ClipSampler, pretraining_clips
from .export import save_encoder
from .health import CollapseWatch, check_finite, plot_curves
from .masking import step_masks, token_grid
from .objective import ObjectiveOutput, VJepaObjective, ema_momentum

ENCODER_DIR = "encoder"
CURVES_FILE = "curves.png"
CONFIG_FILE = "encoder_pretrain_config.json"
WEIGHTS_FILE = "objective.safetensors"


class EncoderPretrainer:
    def __init__(self, config: EncoderPretrainConfig, progress: bool = True):
        self.config, self.progress = config, progress
        self.out_dir = writable_folder(config.out_dir)
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.bf16, self.device)
        announce_precision(self.precision)
        torch.manual_seed(config.seed)
        self.objective = VJepaObjective(config).to(self.device)
        self.clips = pretraining_clips(config.data, config.world_clips, config.world_seed, config.x_encoder, progress)
        self.grid = token_grid(config.x_encoder)
        self.sampler = ClipSampler(len(self.clips), config.seed)
        self.optimizer = build_adamw(
            decay_groups(self.objective.student.named_parameters(), config.lr, config.weight_decay),
            config.lr,
            config.betas,
        )
        self.scheduler = build_schedule(self.optimizer, "cosine", config.warmup_steps, config.steps)
        self.step = 0
        save_json(config, self.out_dir / CONFIG_FILE)

    # --- checkpoints ---------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        def write_weights(directory: Path) -> None:
            weights = {name: tensor.contiguous() for name, tensor in self.objective.state_dict().items()}
            save_file(weights, str(directory / WEIGHTS_FILE))
            save_json(self.config, directory / CONFIG_FILE)

        save_training_state(
            self.out_dir,
            write_weights,
            TrainingState(
                position={"step": self.step},
                rng=[RngState.capture(self.device)],
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                sampler=self.sampler.state_dict(),
            ),
        )

    def _resume(self) -> int | None:
        """Restore the checkpoint if there is one; returns its step (None: a fresh run)."""
        found = load_training_state(self.out_dir)
        if found is None:
            return None
        directory, state = found
        self.objective.load_state_dict(load_file(str(directory / WEIGHTS_FILE), device=str(self.device)))
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        self.sampler.load_state_dict(state.sampler)
        state.rng[0].restore(self.device)
        self.step = state.position["step"]
        console.print(f"resuming from {directory} (step {self.step})")
        return self.step

    # --- the loop ------------------------------------------------------------------------------

    def train_step(self) -> tuple[ObjectiveOutput, float]:
        """One optimizer step and one EMA update; returns the objective's output and the grad norm."""
        config = self.config
        video = self.clips[self.sampler.next_batch(config.batch_size)].to(self.device, torch.float32)
        masks = [
            m.to(self.device) for m in step_masks(config.masks, self.grid, config.batch_size, config.seed, self.step)
        ]
        with self.precision.autocast(self.device.type):
            out = self.objective(video, masks)
        check_finite(out.loss, self.step + 1)
        out.loss.backward()
        grad_norm = apply_gradients(
            self.objective.student.parameters(), self.optimizer, self.scheduler, config.grad_clip
        )
        self.objective.update_target(ema_momentum(self.step, config.steps, config.ema))
        self.step += 1
        return out, grad_norm

    def run(self, stop_at_step: int | None = None) -> Path:
        """Train to `config.steps` (from the checkpoint if there is one); return the exported encoder
        directory, or the checkpoint when stopped at `stop_at_step`. Holds the run folder's lock throughout."""
        with RunDirectory(self.out_dir):
            return self._run(stop_at_step)

    def _run(self, stop_at_step: int | None) -> Path:
        config, log_path = self.config, self.out_dir / METRICS_FILE
        resumed_at = self._resume()
        self.objective.train()
        watch = CollapseWatch(config.collapse_threshold)
        window_start, window_steps = time.perf_counter(), 0
        with (
            progress_bar(
                "V-JEPA pretraining",
                config.steps - self.step,
                self.progress,
                fields="loss {loss:.4f} | spread {spread:.3f} | {rate:.0f} clips/s",
            ) as advance,
            MetricsLog(
                log_path,
                resumed_at,
                report_to=config.report_to,
                config={**to_dict(config), "resolved": self.precision.as_dict()},
            ) as log,
        ):
            while self.step < config.steps and self.step != stop_at_step:
                out, grad_norm = self.train_step()
                window_steps += 1
                rate = window_steps * config.batch_size / max(1e-9, time.perf_counter() - window_start)
                advance(1, loss=out.loss.item(), spread=out.target_std, rate=rate)
                if self.step % config.log_every == 0 or self.step == config.steps:
                    entry = {
                        "global_step": self.step,
                        "loss": out.loss.item(),
                        "mask_losses": out.mask_losses,
                        "mask_tokens": out.mask_tokens,
                        "target_std": out.target_std,
                        "lr": self.scheduler.get_last_lr()[0],
                        "momentum": ema_momentum(self.step - 1, config.steps, config.ema),
                        "grad_norm": grad_norm,
                        "clips_per_s": rate,
                        "precision": self.precision.name,
                    }
                    log.write(entry)
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
