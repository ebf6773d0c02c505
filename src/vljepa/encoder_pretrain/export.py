"""Export the pretrained encoder as a transformers VJEPA2 model, and point configs at it.

V-JEPA / V-JEPA 2: the target (EMA) encoder is the one kept for downstream use; checkpoints are
released in transformers format (`config.json` + `model.safetensors`, loaded by
`VJEPA2Model.from_pretrained`).
Ours: the same: `save_encoder` writes a full `VJEPA2Model` whose encoder is the EMA target and whose
predictor is the trained one, with `save_pretrained` (safetensors), plus the pretraining config as
`encoder_pretrain_config.json` for provenance (transformers ignores it). `XEncoderConfig(path=dir)`
then loads it wherever the package takes an X-encoder; `encoder_config(dir)` builds that config with
the input size read from the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from transformers import VJEPA2Config

from ..config import XEncoderConfig, save_json
from .config import EncoderPretrainConfig
from .objective import VJepaObjective

PROVENANCE_FILE = "encoder_pretrain_config.json"


def save_encoder(objective: VJepaObjective, directory: str | Path, config: EncoderPretrainConfig) -> Path:
    """Write the EMA encoder (+ predictor) as a transformers VJEPA2 directory."""
    directory = Path(directory)
    state = objective.student.state_dict()
    state.update({f"encoder.{name}": tensor for name, tensor in objective.target_encoder.state_dict().items()})
    objective.student.save_pretrained(directory, state_dict=state)
    save_json(config, directory / PROVENANCE_FILE)
    return directory


def encoder_config(path: str | Path, seed: int = 0) -> XEncoderConfig:
    """An `XEncoderConfig` for the VJEPA2 checkpoint at `path` (architecture and input size from its config)."""
    vjepa2 = VJEPA2Config.from_pretrained(path)
    return XEncoderConfig(
        path=str(path),
        seed=seed,
        hidden_size=vjepa2.hidden_size,
        num_layers=vjepa2.num_hidden_layers,
        num_heads=vjepa2.num_attention_heads,
        patch_size=vjepa2.patch_size,
        tubelet_size=vjepa2.tubelet_size,
        image_size=vjepa2.crop_size,
        num_frames=vjepa2.frames_per_clip,
    )
