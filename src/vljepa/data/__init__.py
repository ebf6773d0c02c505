"""The data layer: JSONL manifests (`manifest`) and WebDataset shards of the same records (`shards`), video I/O
through PyAV (`video`, `video_bytes`, `video_gops`), where a library's clips come from (`clip_source`), the
frozen-feature cache (`feature_cache`, needing an encoder only through its `ClipEncoder` protocol) and the
built-in world (`world`, `world_text`). Nothing here imports the model.
"""
