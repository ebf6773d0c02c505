"""What the two small causal LMs share (the Y-decoder and the token VLM baseline): a restricted
vocabulary, and checkpoints as a directory of `model.safetensors` + `config.json`.

A small LM trained to write one corpus cannot usefully write tokens that corpus never uses, and on
this CPU the full 30k-word softmax made a Y-decoder step (batch 128, 1 thread) take 0.9 s against 0.1 s
with the 93 tokens of the world's corpus. So each LM's token table (tied to
its output layer) holds only `corpus_vocabulary(texts)` plus the special tokens, in tokenizer order:
row r of the table is tokenizer id `tokenizer_ids[r]`, and any id outside the vocabulary maps to the
unknown token's row. WordPiece tokenizers (the packaged MiniLM) have [CLS]/[SEP]/[PAD]/[UNK], used as
BOS/EOS/pad/unknown; Llama-style tokenizers have BOS/EOS and may lack a pad (EOS stands in).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from ..config import read_config_json, write_config_json
from ..core.atomic import atomic_write
from .predictor import default_tokenizer_path

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def load_tokenizer(path: str | None):
    """The tokenizer at `path`, or the packaged MiniLM WordPiece tokenizer (the predictor's default)."""
    return AutoTokenizer.from_pretrained(path or default_tokenizer_path())


def corpus_vocabulary(texts: list[str], tokenizer: str | None = None) -> list[int]:
    """The tokenizer ids used by `texts`: an LM's `vocabulary` for that corpus."""
    tokens = load_tokenizer(tokenizer)(list(texts), add_special_tokens=False)
    return sorted({i for ids in tokens["input_ids"] for i in ids})


class RestrictedVocabulary:
    """Texts <-> rows of a restricted token table; `encode` is memoised (training repeats texts)."""

    def __init__(self, tokenizer, vocabulary: list[int] | None):
        self.tokenizer = tok = tokenizer
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        unknown = tok.unk_token_id if tok.unk_token_id is not None else eos
        ids = list(range(len(tok))) if vocabulary is None else sorted({bos, eos, pad, unknown} | set(vocabulary))
        self.tokenizer_ids = torch.tensor(ids)  # row -> tokenizer id
        self.rows = torch.full((len(tok),), ids.index(unknown), dtype=torch.long)  # tokenizer id -> row
        self.rows[self.tokenizer_ids] = torch.arange(len(ids))
        self.bos, self.eos, self.pad, self.unknown = (int(self.rows[i]) for i in (bos, eos, pad, unknown))
        self._memo: dict[tuple[str, int], tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.tokenizer_ids)

    def encode(self, text: str, max_tokens: int) -> tuple[int, ...]:
        """The rows of `text`'s tokens (no special tokens), truncated to `max_tokens`."""
        key = (text, max_tokens)
        if key not in self._memo:
            ids = self.tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
            self._memo[key] = tuple(self.rows[torch.tensor(ids, dtype=torch.long)].tolist())
        return self._memo[key]

    def decode(self, rows: torch.Tensor) -> list[str]:
        """(B, L) generated rows -> B texts; special tokens (EOS, padding) are dropped."""
        texts = self.tokenizer.batch_decode(self.tokenizer_ids[rows.cpu()], skip_special_tokens=True)
        return [text.strip() for text in texts]


def small_llama(
    vocabulary: RestrictedVocabulary,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    max_positions: int,
    attention: str = "sdpa",
) -> LlamaForCausalLM:
    """A random `LlamaForCausalLM` over the vocabulary's rows, its output layer tied to the table
    (seed the caller's RNG for reproducible weights); `attention` = a transformers attn_implementation."""
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(vocabulary),
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_positions,
            bos_token_id=vocabulary.bos,
            eos_token_id=vocabulary.eos,
            pad_token_id=vocabulary.pad,
            tie_word_embeddings=True,
            attn_implementation=attention,
        )
    )


class DirectoryCheckpoint:
    """`save_pretrained` / `from_pretrained` for an nn.Module built from one dataclass `config`:
    subclasses name that dataclass (`config_class`) and what the directory holds (`kind`, for errors)."""

    config_class: type
    kind: str

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_model(self, str(tmp)))
        write_config_json(self.config, directory / CONFIG_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu"):
        directory = Path(directory)
        module = cls(read_config_json(cls.config_class, directory / CONFIG_FILE, cls.kind))
        load_model(module, str(directory / WEIGHTS_FILE))
        return module.to(device)
