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
tokenizer ids found in the training corpus (plus the special tokens): a decoder trained to write a
corpus cannot usefully write tokens it never saw, and on this CPU the full 30k-word softmax was 97%
of a training step. Decoding (greedy or beam, batched) is transformers'
`generate` on `inputs_embeds`, with `length_penalty=0` so beams are ranked by total log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from .atomic import atomic_write
from .config import read_config_json, write_config_json
from .predictor import default_tokenizer_path

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class YDecoderConfig:
    """Prefix-conditioned causal LM. `tokenizer` None = the packaged MiniLM tokenizer."""

    shared_dim: int = 256
    tokenizer: str | None = None
    prefix_tokens: int = 4
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    max_text_tokens: int = 32
    vocabulary: list[int] | None = None  # tokenizer ids the decoder can write; None = the whole tokenizer
    noise_std: float = 0.1  # norm of the training noise relative to the unit input embedding
    seed: int = 0


def corpus_vocabulary(texts: list[str], tokenizer: str | None = None) -> list[int]:
    """The tokenizer ids used by `texts`: a decoder's `vocabulary` for that corpus."""
    tokens = AutoTokenizer.from_pretrained(tokenizer or default_tokenizer_path())(list(texts), add_special_tokens=False)
    return sorted({i for ids in tokens["input_ids"] for i in ids})


class YDecoder(nn.Module):
    def __init__(self, config: YDecoderConfig):
        super().__init__()
        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(config.tokenizer or default_tokenizer_path())
        tok = self.tokenizer  # WordPiece has [CLS]/[SEP]/[PAD]; Llama-style tokenizers have BOS/EOS and no pad
        bos_id = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
        eos_id = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_id
        unknown_id = tok.unk_token_id if tok.unk_token_id is not None else eos_id
        vocabulary = (list(range(len(tok))) if config.vocabulary is None
                      else sorted({bos_id, eos_id, pad_id, unknown_id} | set(config.vocabulary)))
        rows = torch.full((len(tok),), vocabulary.index(unknown_id), dtype=torch.long)  # tokenizer id -> output row
        rows[torch.tensor(vocabulary)] = torch.arange(len(vocabulary))
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("tokenizer_ids", torch.tensor(vocabulary), persistent=False)  # output row -> tokenizer id
        self.bos_row, self.eos_row, self.pad_row = (int(rows[i]) for i in (bos_id, eos_id, pad_id))
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.lm = LlamaForCausalLM(LlamaConfig(
                vocab_size=len(vocabulary), hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
                num_attention_heads=config.num_heads, num_key_value_heads=config.num_heads,
                intermediate_size=config.intermediate_size,
                max_position_embeddings=config.prefix_tokens + config.max_text_tokens + 2,
                bos_token_id=self.bos_row, eos_token_id=self.eos_row, pad_token_id=self.pad_row,
                tie_word_embeddings=True, attn_implementation="sdpa",
            ))
            self.prefix = nn.Linear(config.shared_dim, config.prefix_tokens * config.hidden_size)
        self._token_cache: dict[str, tuple[int, ...]] = {}

    @property
    def device(self) -> torch.device:
        return self.prefix.weight.device

    def _prefix_embeds(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, shared_dim) -> [prefix vectors ; BOS embedding] (B, k + 1, hidden); noisy in training mode."""
        unit = F.normalize(embeddings.to(self.device, self.prefix.weight.dtype), dim=-1)
        if self.training and self.config.noise_std > 0:
            noise = torch.randn_like(unit) * self.config.noise_std / unit.shape[-1] ** 0.5
            unit = F.normalize(unit + noise, dim=-1)
        prefix = self.prefix(unit).view(len(unit), self.config.prefix_tokens, self.config.hidden_size)
        bos = self.lm.get_input_embeddings()(torch.full((len(unit), 1), self.bos_row, device=self.device))
        return torch.cat([prefix, bos], dim=1)

    def _text_rows(self, text: str) -> tuple[int, ...]:
        """Output-layer rows of one text's tokens followed by EOS, memoised (training repeats texts)."""
        if text not in self._token_cache:
            ids = self.tokenizer(text, add_special_tokens=False, truncation=True,
                                 max_length=self.config.max_text_tokens)["input_ids"]
            self._token_cache[text] = (*self.rows[torch.tensor(ids, dtype=torch.long)].tolist(), self.eos_row)
        return self._token_cache[text]

    def token_log_likelihood(self, embeddings: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced log-probabilities of each text's tokens + EOS: values (B, L) and mask (B, L)."""
        rows = [self._text_rows(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_row, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = True
        ids, mask = ids.to(self.device), mask.to(self.device)
        prefix = self._prefix_embeds(embeddings)
        sequence = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        attention = torch.cat([torch.ones(prefix.shape[:2], dtype=torch.bool, device=self.device), mask], dim=1)
        logits = self.lm(inputs_embeds=sequence, attention_mask=attention.long(), use_cache=False).logits
        # position k (BOS) predicts the first text token; the last position predicts nothing
        logits = logits[:, prefix.shape[1] - 1: -1].float()
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
        was_training = self.training
        self.eval()
        prefix = self._prefix_embeds(embeddings)
        beam = {"num_beams": beam_size, "length_penalty": 0.0} if beam_size > 1 else {}
        generated = self.lm.generate(
            inputs_embeds=prefix, attention_mask=torch.ones(prefix.shape[:2], dtype=torch.long, device=self.device),
            max_new_tokens=max_new_tokens or self.config.max_text_tokens + 1, do_sample=False,
            eos_token_id=self.eos_row, pad_token_id=self.pad_row, bos_token_id=self.bos_row, **beam,
        )
        self.train(was_training)
        texts = self.tokenizer.batch_decode(self.tokenizer_ids[generated], skip_special_tokens=True)
        return [text.strip() for text in texts]

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_model(self, str(tmp)))
        write_config_json(self.config, directory / CONFIG_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> "YDecoder":
        directory = Path(directory)
        decoder = cls(read_config_json(YDecoderConfig, directory / CONFIG_FILE, "Y-decoder"))
        load_model(decoder, str(directory / WEIGHTS_FILE))
        return decoder.to(device)

