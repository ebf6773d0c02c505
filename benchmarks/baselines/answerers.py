"""One answering interface over VL-JEPA and the token VLM, so the comparison scores both with the same code.

Both answer from cached X-encoder tokens (n, N, D):
- `caption(tokens)` -> n texts;
- `rank(tokens, query, classes)` -> scores (n, C), higher = more likely;
- `choose(tokens, questions, options)` -> the index of the chosen option per question;
- `answer(tokens, questions)` -> n open-ended answers.
VL-JEPA (the paper's inference): cosine between the prediction and the Y-encoded candidates, text
only through the Y-decoder. Token VLM: each candidate's log-likelihood per token
(`TokenVLM.score`), text by greedy generation. Work is batched; the token VLM's batches are
smaller because each sample multiplies into its candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from vljepa.core.progress import progress_bar
from vljepa.eval.generation import decode_all
from vljepa.model import VLJepa
from vljepa.tasks.embed import embed_texts, predict_tokens
from vljepa.tasks.vqa import choose_options

from .token_vlm import TokenVLM


class VLJepaAnswerer:
    name = "VL-JEPA"

    def __init__(self, model: VLJepa):
        self.model = model.eval()

    def caption(self, tokens: torch.Tensor) -> list[str]:
        return decode_all(self.model, predict_tokens(self.model, tokens, [None] * len(tokens)))

    def rank(self, tokens: torch.Tensor, query: str, classes: list[str]) -> torch.Tensor:
        return predict_tokens(self.model, tokens, [query] * len(tokens)) @ embed_texts(self.model, classes).T

    def choose(self, tokens: torch.Tensor, questions: list[str], options: list[list[str]]) -> list[int]:
        predicted = predict_tokens(self.model, tokens, questions)
        distinct = list(dict.fromkeys(o for opts in options for o in opts))
        embedded = dict(zip(distinct, embed_texts(self.model, distinct)))
        return choose_options(predicted, [torch.stack([embedded[o] for o in opts]) for opts in options])

    def answer(self, tokens: torch.Tensor, questions: list[str]) -> list[str]:
        return decode_all(self.model, predict_tokens(self.model, tokens, questions))


class TokenVLMAnswerer:
    name = "token VLM"

    def __init__(self, model: TokenVLM, batch_size: int = 64, max_candidates: int = 1024, progress: bool = True):
        """`batch_size` samples per call, fewer when their candidates would exceed `max_candidates` rows
        (each candidate row holds a copy of its sample's KV cache)."""
        self.model, self.batch_size, self.max_candidates, self.progress = (
            model.eval(),
            batch_size,
            max_candidates,
            progress,
        )

    def _batched(self, count: int, what: str, work: Callable[[slice], list], candidates: int = 1) -> list:
        out = []
        size = max(1, min(self.batch_size, self.max_candidates // candidates))
        with progress_bar(f"token VLM: {what}", count, self.progress) as advance:
            for rows in _slices(count, size):
                out.extend(work(rows))
                advance(rows.stop - rows.start)
        return out

    def caption(self, tokens: torch.Tensor) -> list[str]:
        return self._batched(len(tokens), "captions", lambda rows: self.model.generate(tokens[rows]))

    def rank(self, tokens: torch.Tensor, query: str, classes: list[str]) -> torch.Tensor:
        def work(rows: slice) -> list[torch.Tensor]:
            count = rows.stop - rows.start
            return self.model.score(tokens[rows], [query] * count, [classes] * count)

        return torch.stack(self._batched(len(tokens), f"ranking {len(classes)} classes", work, len(classes)))

    def choose(self, tokens: torch.Tensor, questions: list[str], options: list[list[str]]) -> list[int]:
        def work(rows: slice) -> list[int]:
            scores = self.model.score(tokens[rows], questions[rows], options[rows])
            return [int(s.argmax()) for s in scores]

        return self._batched(len(tokens), "choosing options", work, max(map(len, options)))

    def answer(self, tokens: torch.Tensor, questions: list[str]) -> list[str]:
        return self._batched(
            len(tokens), "open answers", lambda rows: self.model.generate(tokens[rows], questions[rows])
        )


def _slices(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(count, start + size))
