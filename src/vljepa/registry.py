"""Named models, open_clip-style: `list_models()`, `get_model_config(name)`, `get_model_spec(name)`.

Paper: one model. V-JEPA 2 ViT-L/16 at 256 px, frozen (304M); the last 8 of the 16 layers of
Llama-3.2-1B with the causal mask off, reading the query through Llama's tokenizer and embedding table
(<= 512 tokens) (~490M); EmbeddingGemma-300M plus a linear head, trained at LR x0.05; a 1536-d shared
space; clips of up to 32 frames.
Ours: two names, each a packaged YAML in `configs/models/` (the one source of their `ModelConfig`, which the
paper's training YAMLs name as `model: {name: vljepa-paper}`). `world-tiny` is the `ModelConfig` defaults
(the CPU model of the demo). `vljepa-paper` is the paper's model, its paths pointing at the three
checkpoints under `./checkpoints/` (override them with your own directories: there is no silent
fallback, a missing directory is an error naming it). A name also carries the *architecture* of each pretrained part:
transformers config kwargs with the values of the checkpoint's own `config.json`. `vljepa info` builds
the paper model from them on the meta device (no weights, no downloads); training and inference never
use them, they read each checkpoint's config. Why here and not as new `ModelConfig` fields: the
architecture of a pretrained part belongs to its checkpoint; copying it into every run config would let
the two disagree.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .config import ModelConfig, named_model_config


@dataclass(frozen=True)
class TextModelArchitecture:
    """A sentence-transformers text model: its Transformer module's `config.json` (with `model_type`),
    mean pooling, then its Dense modules `(in_features, out_features, bias)`."""

    transformer: dict
    dense: tuple[tuple[int, int, bool], ...] = ()


@dataclass(frozen=True)
class Architectures:
    """Architectures of the pretrained parts; None = the part is built from the `ModelConfig` fields
    (X-encoder, predictor) or read from the sentence-transformers directory (Y-encoder)."""

    vjepa2: dict | None = None  # transformers VJEPA2Config kwargs
    llama: dict | None = None  # LlamaConfig kwargs of the whole checkpoint; the predictor keeps its last layers
    text_model: TextModelArchitecture | None = None


@dataclass(frozen=True)
class ModelSpec:
    description: str
    config: ModelConfig
    architectures: Architectures = field(default_factory=Architectures)
    paper_parameters: dict[str, float] = field(default_factory=dict)  # row key of `vljepa info` -> paper's count


# facebook/vjepa2-vitl-fpc64-256 config.json (also the VJEPA2Config defaults and the ViT-L of the
# transformers conversion script): ViT-L/16, RoPE (no position table), a 12-layer 384-wide masked predictor.
VJEPA2_VITL_256 = dict(
    patch_size=16,
    crop_size=256,
    frames_per_clip=64,
    tubelet_size=2,
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    mlp_ratio=4.0,
    qkv_bias=True,
    layer_norm_eps=1e-6,
    hidden_act="gelu",
    pred_hidden_size=384,
    pred_num_hidden_layers=12,
    pred_num_attention_heads=12,
    pred_num_mask_tokens=10,
)

# meta-llama/Llama-3.2-1B config.json: 16 layers, width 2048, 32 query / 8 key-value heads of 64,
# SwiGLU 8192, 128256-token vocabulary with the output head tied to the embedding table, llama3 RoPE.
LLAMA_3_2_1B = dict(
    vocab_size=128256,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    hidden_act="silu",
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    tie_word_embeddings=True,
    attention_bias=False,
    mlp_bias=False,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
)

# google/embeddinggemma-300m: config.json (a bidirectional Gemma3TextModel: 24 layers, width 768, 3 query
# heads / 1 key-value head of 256, MLP 1152, 262144-token vocabulary, every 6th layer global, the others
# a 512-token sliding window), then modules.json: mean pooling, Dense 768->3072 and Dense 3072->768
# (no bias, identity activation), Normalize. Values cross-checked in several independent public copies
# of that config (the checkpoint itself is not on this machine).
EMBEDDINGGEMMA_300M = TextModelArchitecture(
    transformer=dict(
        model_type="gemma3_text",
        vocab_size=262144,
        hidden_size=768,
        intermediate_size=1152,
        num_hidden_layers=24,
        num_attention_heads=3,
        num_key_value_heads=1,
        head_dim=256,
        hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        query_pre_attn_scalar=256,
        rope_theta=1000000.0,
        rope_local_base_freq=10000.0,
        sliding_window=512,
        use_bidirectional_attention=True,
        attention_bias=False,
    ),
    dense=((768, 3072, False), (3072, 768, False)),
)

_MODELS: dict[str, ModelSpec] = {
    "world-tiny": ModelSpec(
        description="CPU model of the built-in world: random 32-px VJEPA2 (frozen), 2-layer 128-wide Llama "
        "predictor, all-MiniLM-L6-v2 Y-encoder, 256-d space",
        config=named_model_config("world-tiny"),
    ),
    "vljepa-paper": ModelSpec(
        description="the paper's model: V-JEPA 2 ViT-L/16 256 px (frozen), last 8 of 16 Llama-3.2-1B layers "
        "(bidirectional), EmbeddingGemma-300M at LR x0.05, 1536-d space, 32 frames",
        config=named_model_config("vljepa-paper"),
        architectures=Architectures(vjepa2=VJEPA2_VITL_256, llama=LLAMA_3_2_1B, text_model=EMBEDDINGGEMMA_300M),
        paper_parameters={"x_encoder": 304e6, "predictor_layers": 490e6, "y_encoder_text_model": 300e6},
    ),
}


def list_models() -> list[str]:
    return list(_MODELS)


def get_model_spec(name: str) -> ModelSpec:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(_MODELS)}")
    return copy.deepcopy(_MODELS[name])


def get_model_config(name: str) -> ModelConfig:
    """A fresh `ModelConfig` of a registered model (safe to modify)."""
    return get_model_spec(name).config
