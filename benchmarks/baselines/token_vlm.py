"""Token VLM baseline: the same frozen visual tokens, a causal Llama that writes the answer token by token.

Paper (controlled comparison): a token-generating VLM with the same frozen encoder, data and batch
size as VL-JEPA, a full Llama-3.2-1B (16 layers) trained with next-token cross-entropy, against
VL-JEPA's 8-layer predictor; it classifies by ranking class names by perplexity.
Ours: a transformers `LlamaForCausalLM` (the predictor's block type) reading
[Linear(visual tokens) ; query tokens ; BOS ; target tokens ; EOS] with a causal mask, the loss on
the target tokens and EOS only (caption, answer or class name; never on the query). The default size
is the demo predictor's block (width 128, 4 heads, MLP 512) at twice its depth, as Llama-3.2-1B's 16
layers are twice the predictor's 8. The query uses the predictor's tokenizer (the packaged MiniLM
WordPiece); the token table, tied to the output layer, holds only the corpus's tokens
(`causal_lm.RestrictedVocabulary`, as the Y-decoder), built from the training queries and targets.
Attention is transformers' eager implementation: same maths, but on this CPU a training step ran
1.5x faster than with sdpa, whose CPU flash-attention backward dominated the step.
Inference, batched:
- open text (captioning, open-ended VQA): greedy `generate` on `inputs_embeds` with a KV cache;
  prefixes of different lengths are left-padded and their positions count real tokens only, so a
  batched answer equals the answer alone;
- candidates (classification over class names, multiple-choice VQA over options): each candidate's
  log-likelihood given the prefix, *averaged over its tokens and EOS* (the mean negative is the log
  of its per-token perplexity, the paper's ranking), so long names are not penalised for their
  length. The prefix runs once per sample and its KV cache is copied to each of its candidates.
Saved as `config.json` + `model.safetensors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from vljepa.config import ATTENTIONS
from vljepa.core.config_loader import CheckedConfig, NonNegativeInt, OneOf, PositiveInt
from vljepa.core.ragged import pad_rows
from vljepa.model.causal_lm import DirectoryCheckpoint, RestrictedVocabulary, load_tokenizer, small_llama

IGNORE = -100


@dataclass
class TokenVLMConfig(CheckedConfig):
    """Causal Llama over [Linear(visual) ; query ; BOS ; target]. `tokenizer` None = the packaged MiniLM."""

    visual_dim: PositiveInt = 192  # the X-encoder's token width
    tokenizer: str | None = None
    hidden_size: PositiveInt = 128
    num_layers: PositiveInt = 4
    num_heads: PositiveInt = 4
    intermediate_size: PositiveInt = 512
    max_query_tokens: PositiveInt = 64
    max_text_tokens: PositiveInt = 32
    max_positions: PositiveInt = 4096
    attention: Annotated[str, OneOf(ATTENTIONS)] = "eager"  # on this CPU eager trained 1.5x faster than sdpa
    vocabulary: list[NonNegativeInt] | None = None  # tokenizer ids of the token table; None = the whole tokenizer
    seed: NonNegativeInt = 0


class TokenVLM(DirectoryCheckpoint, nn.Module):
    config_class = TokenVLMConfig
    kind = "token VLM"

    def __init__(self, config: TokenVLMConfig):
        super().__init__()
        self.config = config
        self.vocabulary = RestrictedVocabulary(load_tokenizer(config.tokenizer), config.vocabulary)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.lm = small_llama(
                self.vocabulary,
                config.hidden_size,
                config.num_layers,
                config.num_heads,
                config.intermediate_size,
                config.max_positions,
                config.attention,
            )
            self.visual_proj = nn.Linear(config.visual_dim, config.hidden_size)

    @property
    def device(self) -> torch.device:
        return self.visual_proj.weight.device

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters: all of them, and without the (tied) token table."""
        total = sum(p.numel() for p in self.parameters() if p.requires_grad)
        table = self.lm.get_input_embeddings().weight.numel()
        return {"trainable": total, "token_table": table, "non_embedding": total - table}

    def _embed(self, rows: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(rows.to(self.device))

    def _query_rows(self, query: str | None) -> tuple[int, ...]:
        return self.vocabulary.encode(query, self.config.max_query_tokens) if query else ()

    def _target_rows(self, text: str) -> tuple[int, ...]:
        return self.vocabulary.encode(text, self.config.max_text_tokens)

    def prefix(self, visual_tokens: torch.Tensor, queries: list[str | None]):
        """Left-padded [pads ; Linear(visual) ; query ; BOS] (B, P, H), its mask (B, P) and positions
        (B, P) counting real tokens only (pads get 0)."""
        visual = self.visual_proj(visual_tokens.to(self.device, self.visual_proj.weight.dtype))
        text, text_mask = pad_rows(
            [(*self._query_rows(q), self.vocabulary.bos) for q in queries], self.vocabulary.pad, left=True
        )
        embedded = self._embed(text).to(visual.dtype)
        pads = (~text_mask).sum(1).tolist()
        sequence = torch.stack([torch.cat([embedded[i, :p], visual[i], embedded[i, p:]]) for i, p in enumerate(pads)])
        mask = torch.stack(
            [
                torch.cat([text_mask[i, :p], torch.ones(visual.shape[1], dtype=torch.bool), text_mask[i, p:]])
                for i, p in enumerate(pads)
            ]
        ).to(self.device)
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        return sequence, mask, positions

    def _teacher_forced(
        self, visual_tokens: torch.Tensor, queries: list[str | None], targets: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) at the text positions of right-padded [visual ; query ; BOS ; target] rows, and
        labels (B, T): position j predicts token j + 1, so the BOS and target positions predict the target
        and EOS; query and padding positions are `IGNORE`."""
        rows, labels = [], []
        for query, target in zip(queries, targets):
            query_rows, target_rows = self._query_rows(query), self._target_rows(target)
            rows.append((*query_rows, self.vocabulary.bos, *target_rows))
            labels.append((IGNORE,) * len(query_rows) + (*target_rows, self.vocabulary.eos))
        text, text_mask = pad_rows(rows, self.vocabulary.pad)
        label_ids, _ = pad_rows(labels, IGNORE)
        visual = self.visual_proj(visual_tokens.to(self.device, self.visual_proj.weight.dtype))
        sequence = torch.cat([visual, self._embed(text).to(visual.dtype)], dim=1)
        mask = torch.cat([torch.ones(visual.shape[:2], dtype=torch.bool), text_mask], dim=1).to(self.device)
        hidden = self.lm.model(inputs_embeds=sequence, attention_mask=mask.long(), use_cache=False).last_hidden_state
        return self.lm.lm_head(hidden[:, visual.shape[1] :]).float(), label_ids.to(self.device)

    def loss(self, visual_tokens: torch.Tensor, queries: list[str | None], targets: list[str]) -> torch.Tensor:
        """Mean next-token cross-entropy over the targets' tokens and EOS (teacher forcing)."""
        logits, labels = self._teacher_forced(visual_tokens, queries, targets)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)

    def mean_log_likelihood(
        self, visual_tokens: torch.Tensor, queries: list[str | None], targets: list[str]
    ) -> torch.Tensor:
        """Each target's log-likelihood per token (tokens + EOS) given its sample (B,), in one full pass."""
        logits, labels = self._teacher_forced(visual_tokens, queries, targets)
        known = labels != IGNORE
        values = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
        return (values * known).sum(1) / known.sum(1)

    # --- inference --------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        visual_tokens: torch.Tensor,
        queries: list[str | None] | None = None,
        max_new_tokens: int | None = None,
        use_cache: bool = True,
    ) -> list[str]:
        """Greedy answers (B texts) to the queries (None = caption) about the visual tokens."""
        queries = queries if queries is not None else [None] * len(visual_tokens)
        sequence, mask, positions = self.prefix(visual_tokens, queries)
        generated = self.lm.generate(
            inputs_embeds=sequence,
            attention_mask=mask.long(),
            position_ids=positions,
            do_sample=False,
            max_new_tokens=max_new_tokens or self.config.max_text_tokens + 1,
            use_cache=use_cache,
            eos_token_id=self.vocabulary.eos,
            pad_token_id=self.vocabulary.pad,
            bos_token_id=self.vocabulary.bos,
        )
        return self.vocabulary.decode(generated)

    @torch.no_grad()
    def score(
        self, visual_tokens: torch.Tensor, queries: list[str | None], candidates: list[list[str]]
    ) -> list[torch.Tensor]:
        """For each sample, the log-likelihood per token (tokens + EOS) of each of its candidates: equal to
        `mean_log_likelihood`, but the prefix runs once per sample and its KV cache serves every candidate."""
        sequence, mask, positions = self.prefix(visual_tokens, queries)
        out = self.lm(inputs_embeds=sequence, attention_mask=mask.long(), position_ids=positions, use_cache=True)
        owner = torch.tensor([i for i, options in enumerate(candidates) for _ in options], device=self.device)
        rows = [self._target_rows(text) for options in candidates for text in options]
        # candidate tokens are the inputs (one pad stands in for an empty candidate); + EOS the expected outputs
        inputs, input_mask = pad_rows([r or (self.vocabulary.pad,) for r in rows], self.vocabulary.pad)
        expected, expected_mask = pad_rows([(*r, self.vocabulary.eos) for r in rows], self.vocabulary.pad)
        cache = out.cache
        cache.batch_select_indices(owner)
        steps = torch.arange(inputs.shape[1], device=self.device)
        logits = self.lm(
            inputs_embeds=self._embed(inputs),
            cache=cache,
            use_cache=True,
            attention_mask=torch.cat([mask[owner], input_mask.to(self.device)], 1).long(),
            position_ids=positions[owner, -1:] + 1 + steps,
        ).logits
        # the prefix's last position (BOS) predicts expected token 0; input token j predicts expected token j + 1
        log_probs = torch.cat([out.logits[owner, -1:], logits], dim=1).float().log_softmax(-1)
        expected, expected_mask = expected.to(self.device), expected_mask.to(self.device)
        values = log_probs[:, : expected.shape[1]].gather(-1, expected[..., None]).squeeze(-1)
        mean = (values * expected_mask).sum(1) / expected_mask.sum(1)
        return list(mean.cpu().split([len(options) for options in candidates]))
