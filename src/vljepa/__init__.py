"""vljepa: VL-JEPA (vision-language joint embedding predictive architecture), usable.

Flat API:
    from vljepa import VLJepa, ModelConfig, TrainConfig, Trainer, load_train_config
    model = VLJepa.from_pretrained("runs/demo/model/final")  # bf16="auto": bf16 where the CPU/GPU has it natively
    with model.inference():  # eval mode, no gradients, the chosen precision
        video = model.encode_video(frames, query="which way does the red circle move?")  # (B, d), L2-normalised
        text = model.encode_text(["left", "right", "up", "down"])
    answer = (video @ text.T).argmax(-1)

    # text only when asked: a Y-decoder trained for the model (`vljepa train-decoder`) loads with it
    train_decoder(DecoderTrainConfig(model="runs/demo/model/final", train_manifest="world/train.jsonl"))
    captions = VLJepa.from_pretrained("runs/demo/model/final").decode(video)
    result = caption_stream(model, "long_video.mp4", StreamConfig(hz=0.35))  # selective decoding

    # a persistent search index of a video library (FAISS), tied to the model that built it
    index = VideoIndex.build(model, ["a.mp4", ("long.mp4", 10.0, 12.0)], "my_index")
    hits = VideoIndex.open("my_index", model).search_text(model, ["a red square moves left"], k=5)

    # self-supervised X-encoder (V-JEPA) on unlabelled video, then frozen probes
    encoder_dir = pretrain_encoder(load_encoder_pretrain_config(None, ["data=[world/train.jsonl]"]))
    scores = probe_encoder(XEncoderConfig(path=str(encoder_dir)), "world/train.jsonl", "world/test.jsonl", "cache_dir")
"""

from .config import (
    ModelConfig,
    PredictorConfig,
    StageConfig,
    TrainConfig,
    XEncoderConfig,
    YEncoderConfig,
    load_train_config,
)
from .data.feature_cache import FeatureCache
from .data.manifest import ClipRef, Record, load_manifest
from .data.shards import load_records
from .data.video import VideoError, read_clip
from .encoder_pretrain import EncoderPretrainConfig, EncoderPretrainer, load_encoder_pretrain_config, pretrain_encoder
from .eval.probe import probe_encoder
from .eval.suite import evaluate_manifest
from .model.vljepa import VLJepa
from .model.y_decoder import YDecoder, YDecoderConfig
from .registry import get_model_config, list_models
from .tasks.index import Hit, VideoIndex
from .tasks.stream_captioner import StreamConfig, StreamResult, caption_stream
from .train.decoder import DecoderTrainConfig, train_decoder
from .train.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "ClipRef",
    "DecoderTrainConfig",
    "EncoderPretrainConfig",
    "EncoderPretrainer",
    "FeatureCache",
    "Hit",
    "ModelConfig",
    "PredictorConfig",
    "Record",
    "StageConfig",
    "StreamConfig",
    "StreamResult",
    "TrainConfig",
    "Trainer",
    "VLJepa",
    "VideoError",
    "VideoIndex",
    "XEncoderConfig",
    "YDecoder",
    "YDecoderConfig",
    "YEncoderConfig",
    "caption_stream",
    "evaluate_manifest",
    "get_model_config",
    "list_models",
    "load_encoder_pretrain_config",
    "load_manifest",
    "load_records",
    "load_train_config",
    "pretrain_encoder",
    "probe_encoder",
    "read_clip",
    "train_decoder",
]
