"""`vljepa info MODEL`: parameters and forward FLOPs of every part, built on the meta device.

Paper: a frozen 304M X-encoder, a ~490M predictor (8 Llama layers), EmbeddingGemma-300M, "1.6B" in
total; it does not say how the total was counted (the stated parts add to ~1.1B).
Ours: each part is built with the classes training uses (transformers `VJEPA2Model`, our `Predictor`
around a `LlamaModel`, the text model's transformers class + its sentence-transformers Dense layers +
our head) inside `torch.device("meta")`: shapes only, no memory, no weights, no downloads. The
architectures come from the registry (`registry.Architectures`), else from each checkpoint's config
files, else from the `ModelConfig` fields, exactly as `VLJepa` would build them. One forward of a batch
of one (the configured frames, an optional query, one target text) runs on meta tensors under
`torch.utils.flop_counter.FlopCounterMode`: matmuls, convolutions and attention, 2 FLOPs per
multiply-add; lookups, norms and activations are not counted. Rows split what the paper counts
separately: the Llama layers apart from its token table, the projections apart from both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModel, LlamaConfig, LlamaModel, VJEPA2Config, VJEPA2Model

from ..config import ModelConfig
from ..registry import Architectures, ModelSpec, TextModelArchitecture, get_model_spec
from .predictor import Predictor
from .x_encoder import tiny_vjepa2_config
from .y_encoder import default_text_model_path


@dataclass
class PartInfo:
    key: str  # stable row id, e.g. "predictor_layers"
    part: str  # X-encoder | Predictor | Y-encoder | Loss
    module: str
    parameters: int
    trainable: bool
    training: str  # shown: "no", "no, unused", "yes" or "LR x0.05"
    flops: int
    paper: float | None = None  # the paper's count for this row, where it gives one


@dataclass
class ModelInfo:
    name: str
    frames: int
    image_size: int
    visual_tokens: int
    query_tokens: int
    text_tokens: int
    parts: list[PartInfo]

    @property
    def total(self) -> int:
        return sum(p.parameters for p in self.parts)

    @property
    def trainable(self) -> int:
        return sum(p.parameters for p in self.parts if p.trainable)

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def flops(self) -> int:
        return sum(p.flops for p in self.parts)

    def part(self, key: str) -> PartInfo:
        return next(p for p in self.parts if p.key == key)


class TextEncoderSkeleton(nn.Module):
    """The Y-encoder's shapes: transformer -> mean pooling -> Dense layers -> head."""

    def __init__(self, architecture: TextModelArchitecture, shared_dim: int):
        super().__init__()
        self.transformer = AutoModel.from_config(AutoConfig.for_model(**architecture.transformer))
        self.dense = nn.ModuleList(nn.Linear(i, o, bias=b) for i, o, b in architecture.dense)
        self.text_dim = architecture.dense[-1][1] if architecture.dense else self.transformer.config.hidden_size
        self.head = nn.Linear(self.text_dim, shared_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """No padding mask: every position is real (a mask would make the model inspect values, which meta
        tensors do not have)."""
        hidden = self.transformer(input_ids=ids).last_hidden_state
        pooled = hidden.mean(1)
        for layer in self.dense:
            pooled = layer(pooled)
        return self.head(pooled)


def text_model_architecture(directory: str | Path) -> TextModelArchitecture:
    """Read a sentence-transformers directory's architecture from its config files (no weights)."""
    directory = Path(directory)
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        raise FileNotFoundError(f"{directory}: no modules.json; not a sentence-transformers directory")
    transformer, dense = None, []
    for module in json.loads(modules_file.read_text()):
        kind, path = module["type"].rsplit(".", 1)[-1], directory / module["path"]
        if kind == "Transformer":
            transformer = AutoConfig.from_pretrained(path).to_dict()
        elif kind == "Dense":
            settings = json.loads((path / "config.json").read_text())
            dense.append((settings["in_features"], settings["out_features"], settings.get("bias", True)))
        elif kind not in ("Pooling", "Normalize"):
            raise ValueError(f"{modules_file}: module type {module['type']} is not supported by `vljepa info`")
    if transformer is None:
        raise ValueError(f"{modules_file}: no Transformer module")
    return TextModelArchitecture(transformer, tuple(dense))


def _vjepa2_config(config: ModelConfig, architectures: Architectures) -> VJEPA2Config:
    if architectures.vjepa2 is not None:
        return VJEPA2Config(**architectures.vjepa2)
    if config.x_encoder.path:
        return VJEPA2Config.from_pretrained(config.x_encoder.path)
    return tiny_vjepa2_config(config.x_encoder)


def _kept_llama_config(config: ModelConfig, architectures: Architectures) -> tuple[LlamaConfig, int] | None:
    """The config of the predictor's Llama (its last `last_n_layers` layers) and the source's depth."""
    if architectures.llama is not None:
        llama = LlamaConfig(**architectures.llama)
    elif config.predictor.llama_path:
        llama = LlamaConfig.from_pretrained(config.predictor.llama_path)
    else:
        return None
    total, kept = llama.num_hidden_layers, config.predictor.last_n_layers
    if not 0 < kept <= total:
        raise ValueError(f"last_n_layers={kept} but the Llama checkpoint has {total} layers")
    llama.num_hidden_layers = kept
    if getattr(llama, "layer_types", None):
        llama.layer_types = llama.layer_types[total - kept :]
    return llama, total


def _text_architecture(config: ModelConfig, architectures: Architectures) -> TextModelArchitecture:
    if architectures.text_model is not None:
        return architectures.text_model
    return text_model_architecture(config.y_encoder.path or default_text_model_path())


def _count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _forward_flops(module: nn.Module, *args, **kwargs) -> tuple[object, dict[str, int]]:
    """Run `module` and return its output and FLOPs per submodule path ("" = the whole module)."""
    with FlopCounterMode(display=False) as counter:
        output = module(*args, **kwargs)
    root = type(module).__name__
    flops = {
        name.removeprefix(root).lstrip("."): sum(ops.values())
        for name, ops in counter.get_flop_counts().items()
        if name == root or name.startswith(root + ".")
    }
    return output, flops


@dataclass
class Skeleton:
    """A model's parts as `VLJepa` builds them, for shapes only: built inside `torch.device("meta")` (`vljepa
    info`) or a `FakeTensorMode` (`vljepa plan`), with no weights and no downloads."""

    vjepa2: VJEPA2Model
    predictor: Predictor
    text: TextEncoderSkeleton
    text_architecture: TextModelArchitecture
    llama_depth: int | None  # layers of the Llama checkpoint the predictor keeps the last of

    def video(self, frames: int, batch: int = 1) -> torch.Tensor:
        """An empty clip batch of `frames` frames (an image is repeated to fill the tubelet)."""
        config = self.vjepa2.config
        padded = -(-frames // config.tubelet_size) * config.tubelet_size
        return torch.empty(batch, padded, config.in_chans, config.crop_size, config.crop_size)


def build_skeleton(config: ModelConfig, architectures: Architectures) -> Skeleton:
    """Build the parts on the current default device (call inside `torch.device("meta")` or a fake mode)."""
    kept = _kept_llama_config(config, architectures)
    text_architecture = _text_architecture(config, architectures)
    vjepa2_config = _vjepa2_config(config, architectures)
    vjepa2_config.crop_size = config.x_encoder.image_size
    vjepa2 = VJEPA2Model(vjepa2_config)
    predictor = Predictor(
        config.predictor, vjepa2.config.hidden_size, config.shared_dim, llama=LlamaModel(kept[0]) if kept else None
    )
    text = TextEncoderSkeleton(text_architecture, config.shared_dim)
    return Skeleton(vjepa2, predictor, text, text_architecture, kept[1] if kept else None)


def describe(
    name: str, spec: ModelSpec, frames: int | None = None, query_tokens: int = 0, text_tokens: int = 32
) -> ModelInfo:
    """Build `spec`'s model on the meta device and count parameters and FLOPs of one forward."""
    config = spec.config
    frames = frames or config.x_encoder.num_frames
    with torch.device("meta"):
        skeleton = build_skeleton(config, spec.architectures)
        vjepa2, predictor, text = skeleton.vjepa2, skeleton.predictor, skeleton.text
        visual_dim = vjepa2.config.hidden_size
        size = config.x_encoder.image_size
        output, x_flops = _forward_flops(vjepa2, pixel_values_videos=skeleton.video(frames), skip_predictor=True)
        tokens = output.last_hidden_state
        query_ids = torch.zeros(1, query_tokens, dtype=torch.long)
        _, p_flops = _forward_flops(predictor, tokens, query_ids, torch.ones(1, query_tokens, dtype=torch.bool))
        _, t_flops = _forward_flops(text, torch.zeros(1, text_tokens, dtype=torch.long))

    text_architecture = skeleton.text_architecture
    v, llm = vjepa2.config, predictor.llama.config
    multiplier = config.y_encoder.lr_multiplier
    text_training = "no" if multiplier == 0 else ("yes" if multiplier == 1 else f"LR x{multiplier:g}")
    source = f" of {skeleton.llama_depth}" if skeleton.llama_depth else ""
    dense_dims = [text_architecture.dense[0][0]] + [o for _, o, _ in text_architecture.dense] if text.dense else []
    transformer = text.transformer.config
    rows = [
        PartInfo(
            "x_encoder",
            "X-encoder",
            f"VJEPA2 {v.num_hidden_layers} x {v.hidden_size}, patch {v.patch_size}",
            _count(vjepa2.encoder),
            False,
            "no",
            x_flops.get("", 0),
        ),
        PartInfo(
            "x_encoder_masked_predictor",
            "X-encoder",
            f"V-JEPA predictor {v.pred_num_hidden_layers} x {v.pred_hidden_size}",
            _count(vjepa2.predictor),
            False,
            "no, unused",
            0,
        ),
        PartInfo(
            "predictor_layers",
            "Predictor",
            f"Llama {llm.num_hidden_layers}{source} layers x {llm.hidden_size}",
            _count(predictor.llama) - _count(predictor.llama.embed_tokens),
            True,
            "yes",
            p_flops.get("llama", 0),
        ),
        PartInfo(
            "predictor_embeddings",
            "Predictor",
            f"token table {llm.vocab_size} x {llm.hidden_size}",
            _count(predictor.llama.embed_tokens),
            True,
            "yes",
            0,
        ),
        PartInfo(
            "predictor_visual_proj",
            "Predictor",
            f"Linear {visual_dim} -> {llm.hidden_size}",
            _count(predictor.visual_proj),
            True,
            "yes",
            p_flops.get("visual_proj", 0),
        ),
        PartInfo(
            "predictor_out_proj",
            "Predictor",
            f"Linear {llm.hidden_size} -> {config.shared_dim}",
            _count(predictor.out_proj),
            True,
            "yes",
            p_flops.get("out_proj", 0),
        ),
        PartInfo(
            "y_encoder_text_model",
            "Y-encoder",
            f"{transformer.model_type} {transformer.num_hidden_layers} x {transformer.hidden_size}",
            _count(text.transformer),
            multiplier != 0,
            text_training,
            t_flops.get("transformer", 0),
        ),
    ]
    if text.dense:
        rows.append(
            PartInfo(
                "y_encoder_dense",
                "Y-encoder",
                "Dense " + " -> ".join(map(str, dense_dims)),
                _count(text.dense),
                multiplier != 0,
                text_training,
                sum(t_flops.get(f"dense.{i}", 0) for i in range(len(text.dense))),
            )
        )
    rows.append(
        PartInfo(
            "y_encoder_head",
            "Y-encoder",
            f"Linear {text.text_dim} -> {config.shared_dim}",
            _count(text.head),
            True,
            "yes",
            t_flops.get("head", 0),
        )
    )
    if config.learnable_temperature:
        rows.append(PartInfo("temperature", "Loss", "InfoNCE temperature", 1, True, "yes", 0))
    for row in rows:
        row.paper = spec.paper_parameters.get(row.key)
    return ModelInfo(name, frames, size, tokens.shape[1], query_tokens, text_tokens, rows)


def model_info(name: str, frames: int | None = None, query_tokens: int = 0, text_tokens: int = 32) -> ModelInfo:
    """`describe` a registered model (see `vljepa.registry.list_models()`)."""
    return describe(name, get_model_spec(name), frames, query_tokens, text_tokens)


def _millions(count: float) -> str:
    return f"{count / 1e6:,.1f}M" if count >= 1e6 else f"{count / 1e3:,.1f}K"


def info_table(info: ModelInfo) -> Table:
    table = Table(
        title=f"{info.name}: {info.frames} frame(s), {info.image_size} px -> {info.visual_tokens} visual tokens",
        caption=f"modules: depth x width; FLOPs of one forward, batch 1, query {info.query_tokens} tokens, "
        f"target text {info.text_tokens} tokens",
    )
    for column, justify in [
        ("part", "left"),
        ("module", "left"),
        ("params", "right"),
        ("paper", "right"),
        ("trained", "left"),
        ("GFLOPs", "right"),
    ]:
        table.add_column(column, justify=justify)
    for row in info.parts:
        table.add_row(
            row.part,
            row.module,
            _millions(row.parameters),
            _millions(row.paper) if row.paper else "",
            row.training,
            f"{row.flops / 1e9:,.2f}",
        )
    table.add_section()
    table.add_row("total", "", _millions(info.total), "", "", f"{info.flops / 1e9:,.2f}")
    table.add_row("trainable", "", _millions(info.trainable), "", "", "")
    table.add_row("frozen", "", _millions(info.frozen), "", "", "")
    return table
