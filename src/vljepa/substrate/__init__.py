"""The training substrate every loop shares (the VL-JEPA trainer, the Y-decoder's training, encoder pretraining,
the probes, the token VLM baseline): the device (`device`), AdamW groups, transformers' warmup schedules and the
update (`optim`), one resumable training state written atomically (`state`), the metrics log cut back on resume
(`metrics`) and the run folder's lock (`run_dir`). Nothing here knows a particular model or loop.
"""
