"""Training samples from manifest records, and a resumable mixture sampler.

A record yields one sample per field it carries: caption -> (no query, caption), the query-free
pretraining objective; question/answer -> (question, answer); label -> (classification prompt,
label). The sampler draws each batch's kinds from the stage's mixture weights and walks each kind in
seeded epoch permutations; its whole position is a few counters, saved with the checkpoint so a
resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import KINDS
from ..data.manifest import ClipRef, Record


@dataclass(frozen=True)
class Sample:
    clip: ClipRef
    query: str | None
    target: str
    kind: str


def samples_from_records(records: list[Record], classification_prompt: str) -> dict[str, list[Sample]]:
    by_kind: dict[str, list[Sample]] = {kind: [] for kind in KINDS}
    for record in records:
        if record.caption:
            by_kind["caption"].append(Sample(record.clip, None, record.caption, "caption"))
        if record.question and record.answer:
            by_kind["vqa"].append(Sample(record.clip, record.question, record.answer, "vqa"))
        if record.label:
            by_kind["label"].append(Sample(record.clip, classification_prompt, record.label, "label"))
    return by_kind


class MixtureSampler:
    def __init__(self, samples: dict[str, list[Sample]], mixture: dict[str, float], seed: int):
        unknown = set(mixture) - set(KINDS)
        if unknown:
            raise ValueError(f"mixture names unknown kinds {sorted(unknown)}; known: {KINDS}")
        self.kinds = [k for k, w in mixture.items() if w > 0 and samples.get(k)]
        if not self.kinds:
            raise ValueError(
                f"no training samples for the mixture {mixture}; the manifest has "
                f"{ {k: len(v) for k, v in samples.items()} }"
            )
        weights = np.array([mixture[k] for k in self.kinds], dtype=float)
        self.weights = weights / weights.sum()
        self.samples, self.seed = samples, seed
        self.step = 0
        self.drawn = {k: 0 for k in self.kinds}
        self._current: dict[str, tuple[int, np.ndarray]] = {}

    def _permutation(self, kind: str, epoch: int) -> np.ndarray:
        """The seeded order of `kind` in `epoch`; the current one is kept, the rest are re-derived."""
        cached = self._current.get(kind)
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, KINDS.index(kind), epoch])
            cached = self._current[kind] = (epoch, rng.permutation(len(self.samples[kind])))
        return cached[1]

    def _take(self, kind: str, count: int) -> list[Sample]:
        items, size = [], len(self.samples[kind])
        for position in range(self.drawn[kind], self.drawn[kind] + count):
            epoch, offset = divmod(position, size)
            items.append(self.samples[kind][self._permutation(kind, epoch)[offset]])
        self.drawn[kind] += count
        return items

    def next_batch(self, batch_size: int) -> list[Sample]:
        rng = np.random.default_rng([self.seed, 1_000_003, self.step])
        counts = rng.multinomial(batch_size, self.weights)
        self.step += 1
        return [s for kind, count in zip(self.kinds, counts) for s in self._take(kind, int(count))]

    def state_dict(self) -> dict:
        return {"step": self.step, "drawn": dict(self.drawn)}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.drawn = state["step"], dict(state["drawn"])
