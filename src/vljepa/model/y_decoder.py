"""Y-decoder: embeddings (B, shared_dim) -> texts, a small causal LM read through prefix vectors.

Paper: a "lightweight text decoder" turns a predicted embedding into text for open-ended VQA and
captioning, and is used only at inference; its architecture and training are not described.
Ours: a transformers `LlamaForCausalLM` (the predictor's family) conditioned on the embedding
through `prefix_tokens` vectors: the L2-normalised embedding goes through one
Linear(shared_dim -> prefix_tokens x hidden) and those vectors precede [BOS] and the text, as in
ClipCap-style prefix decoders. Why a prefix: it needs no change to the LM class (no cross-attention
to add), so transformers' `generate` (greedy, beam, KV cache) works as is and a pretrained causal LM
could replace the random one. It is trained to invert the Y-encoder: teacher-forced cross-entropy
on texts given their (fixed) Y-encoder embeddings. Predicted embeddings never equal the target
exactly, so training adds Gaussian noise of norm about `noise_std` to the unit input embedding
(then renormalises): the decoder learns a neighbourhood of each text, not a point.
The tiny default is randomly initialised and borrows the packaged MiniLM WordPiece tokenizer
([CLS] = BOS, [SEP] = EOS), like the predictor. Its output layer covers only `vocabulary`, the
tokenizer ids found in the training corpus (plus the special tokens; see `causal_lm.py`, shared
with the token VLM baseline). Decoding (greedy or beam, batched) is transformers'
`generate` on `inputs_embeds`, with `length_penalty=0` so beams are ranked by total log-likelihood,
and no pair of tokens written twice (`no_repeat_ngram_size`, default 2): an embedding far from every
training text could otherwise make the decoder loop ("a a a a red triangle triangle"), while captions
rarely repeat a pair (none of the built-in world's 49,846 training captions and answers does).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ATTENTIONS
from ..core.config_loader import CheckedConfig, NonNegativeFloat, NonNegativeInt, OneOf, PositiveInt
from ..core.eval_mode import evaluating
from ..core.ragged import pad_rows
from .causal_lm import DirectoryCheckpoint, RestrictedVocabulary, load_tokenizer, small_llama


@dataclass
class YDecoderConfig(CheckedConfig):
    """Prefix-conditioned causal LM. `tokenizer` None = the packaged MiniLM tokenizer."""

    shared_dim: PositiveInt = 256
    tokenizer: str | None = None
    prefix_tokens: PositiveInt = 4
    hidden_size: PositiveInt = 128
    num_layers: PositiveInt = 2
    num_heads: PositiveInt = 4
    intermediate_size: PositiveInt = 512
    max_text_tokens: PositiveInt = 32
    vocabulary: list[NonNegativeInt] | None = None  # tokenizer ids the decoder can write; None = the whole tokenizer
    noise_std: NonNegativeFloat = 0.1  # norm of the training noise relative to the unit input embedding
    seed: NonNegativeInt = 0
    attention: Annotated[str, OneOf(ATTENTIONS)] = (
        "sdpa"  # transformers attention: "eager" is faster for tiny CPU models
    )
    no_repeat_ngram_size: NonNegativeInt = 2  # decoding never writes a token pair twice (0: no limit)


class YDecoder(DirectoryCheckpoint, nn.Module):
    config_class = YDecoderConfig
    kind = "Y-decoder"

    def __init__(self, config: YDecoderConfig):
        super().__init__()
        self.config = config
        self.tokenizer = load_tokenizer(config.tokenizer)
        self.vocabulary = RestrictedVocabulary(self.tokenizer, config.vocabulary)
        self.bos_row, self.eos_row, self.pad_row = self.vocabulary.bos, self.vocabulary.eos, self.vocabulary.pad
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.lm = small_llama(
                self.vocabulary,
                config.hidden_size,
                config.num_layers,
                config.num_heads,
                config.intermediate_size,
                config.prefix_tokens + config.max_text_tokens + 2,
                config.attention,
            )
            self.prefix = nn.Linear(config.shared_dim, config.prefix_tokens * config.hidden_size)

    @property
    def device(self) -> torch.device:
        return self.prefix.weight.device

    def _prefix_embeds(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, shared_dim) -> [prefix vectors ; BOS embedding] (B, k + 1, hidden); noisy in training mode."""
        unit = F.normalize(embeddings.to(self.device, self.prefix.weight.dtype), dim=-1)
        if self.training and self.config.noise_std > 0:
            noise = torch.randn_like(unit) * self.config.noise_std / unit.shape[-1] ** 0.5
            unit = F.normalize(unit + noise, dim=-1)
        # shapes from ops, not from len(): the ONNX export keeps the batch dynamic
        prefix = self.prefix(unit).unflatten(-1, (self.config.prefix_tokens, self.config.hidden_size))
        bos = self.lm.get_input_embeddings().weight[self.bos_row].expand(prefix.shape[0], 1, -1)
        return torch.cat([prefix, bos], dim=1)

    def _text_rows(self, text: str) -> tuple[int, ...]:
        """Output-layer rows of one text's tokens followed by EOS."""
        return (*self.vocabulary.encode(text, self.config.max_text_tokens), self.eos_row)

    def token_log_likelihood(self, embeddings: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced log-probabilities of each text's tokens + EOS: values (B, L) and mask (B, L)."""
        rows = [self._text_rows(t) for t in texts]
        ids, mask = (t.to(self.device) for t in pad_rows(rows, self.pad_row))
        prefix = self._prefix_embeds(embeddings)
        sequence = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        attention = torch.cat([torch.ones(prefix.shape[:2], dtype=torch.bool, device=self.device), mask], dim=1)
        logits = self.lm(inputs_embeds=sequence, attention_mask=attention.long(), use_cache=False).logits
        # position k (BOS) predicts the first text token; the last position predicts nothing
        logits = logits[:, prefix.shape[1] - 1 : -1].float()
        values = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        return values * mask, mask

    def sequence_log_likelihood(self, embeddings: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Total log-probability (B,) of each text (with its EOS) given its embedding."""
        values, _ = self.token_log_likelihood(embeddings, texts)
        return values.sum(1)

    def loss(self, embeddings: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Mean per-token cross-entropy of the texts given their embeddings."""
        values, mask = self.token_log_likelihood(embeddings, texts)
        return -values.sum() / mask.sum()

    @torch.no_grad()
    def decode(self, embeddings: torch.Tensor, beam_size: int = 1, max_new_tokens: int | None = None) -> list[str]:
        """(B, shared_dim) -> B texts, greedy (`beam_size=1`) or beam search ranked by total log-likelihood."""
        with evaluating(self):
            prefix = self._prefix_embeds(embeddings)
            beam = {"num_beams": beam_size, "length_penalty": 0.0} if beam_size > 1 else {}
            with warnings.catch_warnings():  # the prefix has no token ids: the n-gram guard covers the text alone
                warnings.filterwarnings("ignore", message="Passing `no_repeat_ngram_size` with `inputs_embeds`")
                generated = self.lm.generate(
                    inputs_embeds=prefix,
                    attention_mask=torch.ones(prefix.shape[:2], dtype=torch.long, device=self.device),
                    max_new_tokens=max_new_tokens or self.config.max_text_tokens + 1,
                    do_sample=False,
                    eos_token_id=self.eos_row,
                    pad_token_id=self.pad_row,
                    bos_token_id=self.bos_row,
                    no_repeat_ngram_size=self.config.no_repeat_ngram_size,
                    **beam,
                )
        return self.vocabulary.decode(generated)
