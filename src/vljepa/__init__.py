"""vljepa: VL-JEPA (vision-language joint embedding predictive architecture), usable.

The names below are imported on first use, so `import vljepa` (and the command line, and the ONNX runtime in
`vljepa.deploy`) does not load PyTorch until something needs it.

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

import importlib

_EXPORTS = {  # name -> the module that defines it, imported on first use (`import vljepa` does not load torch)
    ".config": [
        "ModelConfig",
        "PredictorConfig",
        "StageConfig",
        "TrainConfig",
        "XEncoderConfig",
        "YEncoderConfig",
        "load_train_config",
    ],
    ".data.feature_cache": ["FeatureCache"],
    ".data.manifest": ["ClipRef", "Record", "load_manifest"],
    ".data.shards": ["load_records"],
    ".data.video": ["VideoError", "read_clip"],
    ".encoder_pretrain": [
        "EncoderPretrainConfig",
        "EncoderPretrainer",
        "load_encoder_pretrain_config",
        "pretrain_encoder",
    ],
    ".eval.probe": ["probe_encoder"],
    ".eval.suite": ["evaluate_manifest"],
    ".model.vljepa": ["VLJepa"],
    ".model.y_decoder": ["YDecoder", "YDecoderConfig"],
    ".registry": ["get_model_config", "list_models"],
    ".tasks.index": ["Hit", "VideoIndex"],
    ".tasks.stream_captioner": ["StreamConfig", "StreamResult", "caption_stream"],
    ".train.decoder": ["DecoderTrainConfig", "train_decoder"],
    ".train.trainer": ["Trainer"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'vljepa' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


__version__ = "0.1.0"

__all__ = sorted(_MODULE_OF)
