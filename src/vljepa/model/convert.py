"""Convert an upstream V-JEPA 2 checkpoint (`.pt` of facebookresearch/vjepa2) to a transformers VJEPA2 directory.

Paper: the X-encoder is V-JEPA 2 ViT-L/16 at 256 px. Its weights are published twice: as the upstream
training checkpoint (`torch.save` of a dict whose "encoder"/"target_encoder" entries hold the
`VisionTransformer` state, keys often prefixed `module.backbone.`) and in transformers format.
Ours: the X-encoder loads the transformers format (`model.x_encoder.path=DIR`); this converter turns
the upstream file into it. The key map is explicit (`KEY_MAP`, `QKV`): one fused `attn.qkv` Linear
upstream becomes the `query`/`key`/`value` Linears of transformers (rows in that order). Loading is
strict: a key that maps to nothing, or an encoder weight the checkpoint lacks, is an error naming the
keys, never a silent random init. The architecture is read from the weights (width, depth, patch,
tubelet, MLP ratio, qkv bias) except what they cannot tell: the head count (V-JEPA 2's table by
width, or `num_heads`), the crop size and frames per clip (RoPE has no position table).
Only the encoder is converted: the output's weight file holds exactly the encoder; transformers
initialises the V-JEPA masked predictor (unused by VL-JEPA) randomly when loading it, with a warning.
The whole model is never materialised: expected names and shapes come from a meta-device VJEPA2Model.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import VJEPA2Config, VJEPA2Model

from ..core.atomic import atomic_write

# upstream `VisionTransformer` name -> transformers `VJEPA2Model` name; {i} = block index, {p} = weight|bias.
KEY_MAP = {
    "patch_embed.proj.{p}": "encoder.embeddings.patch_embeddings.proj.{p}",
    "blocks.{i}.norm1.{p}": "encoder.layer.{i}.norm1.{p}",
    "blocks.{i}.attn.proj.{p}": "encoder.layer.{i}.attention.proj.{p}",
    "blocks.{i}.norm2.{p}": "encoder.layer.{i}.norm2.{p}",
    "blocks.{i}.mlp.fc1.{p}": "encoder.layer.{i}.mlp.fc1.{p}",
    "blocks.{i}.mlp.fc2.{p}": "encoder.layer.{i}.mlp.fc2.{p}",
    "norm.{p}": "encoder.layernorm.{p}",
}
# the fused projection, split by rows into thirds (upstream computes q, k, v = qkv(x).unflatten(-1, (3, heads, -1))).
QKV = (
    "blocks.{i}.attn.qkv.{p}",
    (
        "encoder.layer.{i}.attention.query.{p}",
        "encoder.layer.{i}.attention.key.{p}",
        "encoder.layer.{i}.attention.value.{p}",
    ),
)
PREFIXES = ("module.", "backbone.")  # DDP and the upstream wrapper
HEADS_BY_WIDTH = {1024: 16, 1280: 16, 1408: 22}  # V-JEPA 2 ViT-L, ViT-H, ViT-g


def template_pattern(template: str) -> re.Pattern:
    """`blocks.{i}.norm1.{p}` -> a regex with groups `i` and `p`."""
    escaped = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(escaped + "$")


_RULES = [(template_pattern(upstream), (hf,)) for upstream, hf in KEY_MAP.items()] + [
    (template_pattern(QKV[0]), QKV[1])
]


def strip_prefixes(key: str) -> str:
    while key.startswith(PREFIXES):
        key = key.split(".", 1)[1]
    return key


def upstream_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and split qkv of) an upstream encoder state dict; unmappable keys are an error."""
    converted, unmapped = {}, []
    for raw_key, tensor in state.items():
        key = strip_prefixes(raw_key)
        for pattern, targets in _RULES:
            match = pattern.match(key)
            if match:
                parts = tensor.chunk(len(targets), dim=0) if len(targets) > 1 else (tensor,)
                for target, part in zip(targets, parts):
                    converted[target.format(**match.groupdict())] = part.clone()
                break
        else:
            unmapped.append(raw_key)
    if unmapped:
        raise KeyError(f"unexpected keys with no transformers VJEPA2 name: {sorted(unmapped)}")
    return converted


def infer_config(
    state: dict[str, torch.Tensor], num_heads: int | None = None, image_size: int = 256, num_frames: int = 64
) -> VJEPA2Config:
    """The VJEPA2Config of converted encoder weights (see the module docstring for what is not inferable)."""
    patch = state.get("encoder.embeddings.patch_embeddings.proj.weight")
    if patch is None:
        raise KeyError("missing key patch_embed.proj.weight: not a V-JEPA 2 video encoder state dict")
    width, channels, tubelet, patch_size, _ = patch.shape
    depth = len({int(k.split(".")[2]) for k in state if k.startswith("encoder.layer.")})
    if num_heads is None:
        if width not in HEADS_BY_WIDTH:
            raise ValueError(f"width {width} is not a V-JEPA 2 size {sorted(HEADS_BY_WIDTH)}; pass num_heads")
        num_heads = HEADS_BY_WIDTH[width]
    mlp_hidden = state["encoder.layer.0.mlp.fc1.weight"].shape[0] if depth else 4 * width
    return VJEPA2Config(
        hidden_size=width,
        in_chans=channels,
        tubelet_size=tubelet,
        patch_size=patch_size,
        num_hidden_layers=depth,
        num_attention_heads=num_heads,
        mlp_ratio=mlp_hidden / width,
        crop_size=image_size,
        frames_per_clip=num_frames,
        qkv_bias="encoder.layer.0.attention.query.bias" in state,
    )


def check_against(config: VJEPA2Config, state: dict[str, torch.Tensor]) -> None:
    """Strict: exactly the encoder keys of a VJEPA2Model of `config`, with its shapes."""
    with torch.device("meta"):
        expected = {k: v.shape for k, v in VJEPA2Model(config).state_dict().items() if k.startswith("encoder.")}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise KeyError(
            f"checkpoint does not match a VJEPA2 encoder: missing keys {missing}, unexpected keys {unexpected}"
        )
    wrong = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(shape)}" for k, shape in expected.items() if state[k].shape != shape
    ]
    if wrong:
        raise ValueError(f"shape mismatch (checkpoint vs model): {wrong}")


def load_upstream_encoder(checkpoint: str | Path, key: str = "target_encoder") -> dict[str, torch.Tensor]:
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or key not in saved:
        keys = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise KeyError(f"{path}: no entry {key!r}; the checkpoint holds {keys}")
    return saved[key]


def convert_vjepa2(
    checkpoint: str | Path,
    out_dir: str | Path,
    key: str = "target_encoder",
    num_heads: int | None = None,
    image_size: int = 256,
    num_frames: int = 64,
) -> Path:
    """Upstream `.pt` -> `out_dir` with `config.json` + `model.safetensors`, loadable by `VJEPA2Model.from_pretrained`."""
    state = upstream_to_transformers(load_upstream_encoder(checkpoint, key))
    config = infer_config(state, num_heads, image_size, num_frames)
    check_against(config, state)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "model.safetensors", lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    atomic_write(out_dir / "config.json", config.to_json_file)
    return out_dir
