"""Self-supervised pretraining of the X-encoder with the V-JEPA objective on unlabelled video.

    from vljepa.encoder_pretrain import load_encoder_pretrain_config, pretrain_encoder
    encoder_dir = pretrain_encoder(load_encoder_pretrain_config(None, ["data=[world/train.jsonl]", "steps=500"]))
    # then: XEncoderConfig(path=str(encoder_dir)) in a VL-JEPA config (encoder_config(encoder_dir) fills the
    # input size from the checkpoint), or `vljepa probe --encoder <encoder_dir> --compare-random`

Files: `config.py` (typed config), `masking.py` (multi-block space-time masks), `data.py` (clips in
memory, sampler), `objective.py` (context encoder, EMA target, predictor, L1 loss), `health.py`
(collapse watch, curves), `trainer.py` (the loop, checkpoints, resume), `export.py` (transformers format).
"""

from .config import EncoderPretrainConfig, MaskConfig, PretrainPredictorConfig, load_encoder_pretrain_config
from .export import encoder_config, save_encoder
from .objective import VJepaObjective
from .trainer import EncoderPretrainer, pretrain_encoder

__all__ = [
    "EncoderPretrainConfig",
    "EncoderPretrainer",
    "MaskConfig",
    "PretrainPredictorConfig",
    "VJepaObjective",
    "encoder_config",
    "load_encoder_pretrain_config",
    "pretrain_encoder",
    "save_encoder",
]
