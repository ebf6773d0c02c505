"""Training the token VLM on exactly the stream of samples VL-JEPA's `Trainer` sees.

Paper: the controlled comparison trains both models with the same encoder, data and batch size and
plots quality against samples seen.
Ours: the token VLM reads the `Trainer`'s own samples and feature table (`load_samples`), runs the
same `TrainConfig` stages (steps, batch size, mixture, warmup + constant/cosine schedule) and draws
batches from `MixtureSampler`s seeded by the trainer's own `stage_seed`, so
both models see the same batches in the same order. AdamW with the trainer's betas, weight-decay rule
(matrices only), schedule, gradient clipping and precision (`bf16`), from the trainer (`VLJEPA_BETAS`) and
the shared substrate (`vljepa.substrate.optim`, `vljepa.core.precision`); a fresh optimizer per stage, as the
trainer.
Only the objective differs: next-token cross-entropy on the target text instead of InfoNCE.
`lr_scale` multiplies every stage's LR (tuning keeps the schedule's shape). `on_stop(global_step,
training seconds so far)` is called at each requested step, in eval mode, and is not timed as training.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vljepa.config import TrainConfig
from vljepa.core.precision import announce_precision, resolve_precision
from vljepa.core.progress import progress_bar
from vljepa.model.causal_lm import corpus_vocabulary
from vljepa.substrate.optim import apply_gradients, build_adamw, build_schedule, decay_groups
from vljepa.train.batches import stage_seed
from vljepa.train.dataset import FeatureTable
from vljepa.train.samples import MixtureSampler, Sample
from vljepa.train.trainer import VLJEPA_BETAS

from .token_vlm import TokenVLM


def sample_vocabulary(samples: dict[str, list[Sample]], tokenizer: str | None = None) -> list[int]:
    """The tokenizer ids of every query and target of the training samples (the token VLM's table)."""
    texts = {text for items in samples.values() for s in items for text in (s.query, s.target) if text}
    return corpus_vocabulary(sorted(texts), tokenizer)


def stage_sampler(samples: dict[str, list[Sample]], config: TrainConfig, stage_index: int) -> MixtureSampler:
    """The sampler `Trainer.run` builds for this stage (same seed, hence the same batches)."""
    return MixtureSampler(samples, config.stages[stage_index].mixture, stage_seed(config, stage_index))


def train_token_vlm(
    model: TokenVLM,
    samples: dict[str, list[Sample]],
    features: FeatureTable,
    config: TrainConfig,
    lr_scale: float = 1.0,
    stops: tuple[int, ...] = (),
    on_stop: Callable[[int, float], None] | None = None,
    progress: bool = True,
) -> dict:
    """Run every stage of `config`; returns {"seconds": training wall time, "log": [...]}."""
    device = model.device
    precision = resolve_precision(config.bf16, device)
    announce_precision(precision)
    log, seconds, global_step = [], 0.0, 0
    model.train()
    for stage_index, stage in enumerate(config.stages):
        lr = stage.lr * lr_scale
        optimizer = build_adamw(decay_groups(model.named_parameters(), lr, config.weight_decay), lr, VLJEPA_BETAS)
        scheduler = build_schedule(optimizer, stage.schedule, stage.warmup_steps, stage.steps)
        sampler = stage_sampler(samples, config, stage_index)
        with progress_bar(f"token VLM {stage.name}", stage.steps, progress, fields="loss {loss:.3f}") as advance:
            for step in range(stage.steps):
                began = time.perf_counter()
                batch = sampler.next_batch(stage.batch_size)
                with precision.autocast(device.type):
                    loss = model.loss(
                        features.gather(batch, device), [s.query for s in batch], [s.target for s in batch]
                    )
                loss.backward()
                apply_gradients(model.parameters(), optimizer, scheduler, config.grad_clip)
                seconds += time.perf_counter() - began
                global_step += 1
                advance(1, loss=loss.item())
                if (step + 1) % config.log_every == 0 or step + 1 == stage.steps:
                    log.append(
                        {
                            "stage": stage.name,
                            "step": step + 1,
                            "global_step": global_step,
                            "loss": loss.item(),
                            "lr": scheduler.get_last_lr()[0],
                        }
                    )
                if global_step in stops and on_stop is not None:
                    model.eval()
                    on_stop(global_step, seconds)
                    model.train()
    model.eval()
    return {"seconds": seconds, "log": log}
