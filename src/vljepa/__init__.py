"""vljepa: VL-JEPA (vision-language joint embedding predictive architecture), usable.

Flat API:
    from vljepa import VLJepa, ModelConfig, TrainConfig, Trainer, load_train_config
    model = VLJepa.from_pretrained("runs/demo/model/final")
    video = model.encode_video(frames, query="which way does the red circle move?")  # (B, d), L2-normalised
    text = model.encode_text(["left", "right", "up", "down"])
    answer = (video @ text.T).argmax(-1)

    # self-supervised X-encoder (V-JEPA) on unlabelled video, then frozen probes
    encoder_dir = pretrain_encoder(load_encoder_pretrain_config(None, ["data=[world/train.jsonl]"]))
    scores = probe_encoder(XEncoderConfig(path=str(encoder_dir)), "world/train.jsonl", "world/test.jsonl", "cache_dir")
"""

from .config import ModelConfig, PredictorConfig, StageConfig, TrainConfig, XEncoderConfig, YEncoderConfig, load_train_config
from .data.feature_cache import FeatureCache
from .data.manifest import ClipRef, Record, load_manifest
from .data.video import VideoError, read_clip
from .encoder_pretrain import EncoderPretrainConfig, EncoderPretrainer, load_encoder_pretrain_config, pretrain_encoder
from .eval.probe import probe_encoder
from .eval.suite import evaluate_manifest
from .model import VLJepa
from .train.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "ClipRef", "EncoderPretrainConfig", "EncoderPretrainer", "FeatureCache", "ModelConfig", "PredictorConfig", "Record",
    "StageConfig", "TrainConfig", "Trainer", "VLJepa", "VideoError", "XEncoderConfig", "YEncoderConfig",
    "evaluate_manifest", "load_encoder_pretrain_config", "load_manifest", "load_train_config", "pretrain_encoder",
    "probe_encoder", "read_clip",
]
