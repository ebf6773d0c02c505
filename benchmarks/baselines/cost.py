"""Inference cost per answer, VL-JEPA beside the token VLM: wall time and FLOPs.

Paper: VL-JEPA answers classification, retrieval and discriminative VQA without decoding, a text
generation costs about what a VLM's does, and on a stream it decodes only when the meaning changes.
Ours: each measurement runs one model on `clips` cached clips, batched as in the comparison's
evaluation (`answerers.py`), once to warm up (tokenizer and text memos filled), once under
`FlopCounterMode` and once timed; reported per answer. FLOPs count matrix products and attention
(torch does not count CPU flash attention, so it is registered here with torch's own sdpa formula).
The frozen X-encoder is the same for both models and excluded; its cost per clip is reported once,
as is the Y-encoder's per text (VL-JEPA pays it once per distinct class name or option: its frozen
text encoder memoises strings). Tasks:
- classification over N names (the world's classes, then distinct training captions standing in
  for more classes): VL-JEPA = one prediction + N cosines; token VLM = the prefix once + N names
  scored on its KV cache;
- multiple-choice VQA on the test questions (their options);
- captioning: VL-JEPA = prediction + Y-decoder greedy; token VLM = greedy generation;
- a stream cut into sliding windows, per second of video: VL-JEPA decoding every window, VL-JEPA
  selective decoding (Ward, `hz` decodes per second), the token VLM generating for every window,
  and the token VLM generating at the selective rate (evenly spaced windows: it has no embedding
  stream to place its decodes by meaning). `..._with_x_encoder` adds the X-encoder for each window
  a method must encode: selective decoding needs every window's embedding, sparse generation only
  its own windows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from vljepa.core.progress import progress_bar
from vljepa.data.feature_cache import FeatureCache
from vljepa.data.manifest import class_names, load_manifest
from vljepa.data.video import iter_windows
from vljepa.model import VLJepa
from vljepa.tasks.embed import predict_tokens
from vljepa.tasks.stream import segment_count, uniform, ward, window_times, with_edges
from vljepa.tasks.stream_captioner import decode_segments

from .answerers import TokenVLMAnswerer, VLJepaAnswerer
from .protocol import Split
from .token_vlm import TokenVLM


@dataclass
class CostConfig:
    """What `inference_costs` measures."""

    clips: int = 64  # answers per measurement
    class_counts: list[int] = field(default_factory=lambda: [12, 100, 1000])  # classification over N names
    stream_seconds: float = 60.0  # the first stream of streams.jsonl, cut to this length
    window_seconds: float = 2.0
    stride_seconds: float = 0.5
    hz: float = 0.35  # selective decoding rate (the paper's)


def _cpu_flash_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops}


def measure(work: Callable[[], object], answers: int) -> dict:
    """Warm up, count FLOPs, then time `work` (which produces `answers` answers)."""
    work()
    with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as counter:
        work()
    began = time.perf_counter()
    work()
    seconds = time.perf_counter() - began
    return {
        "answers": answers,
        "ms_per_answer": 1000 * seconds / answers,
        "mflops_per_answer": counter.get_total_flops() / answers / 1e6,
    }


def _class_names(classes: list[str], extra: list[str], count: int) -> list[str]:
    names = list(dict.fromkeys([*classes, *extra]))[:count]
    if len(names) < count:
        raise ValueError(f"only {len(names)} distinct names for a {count}-way classification")
    return names


def stream_tokens(model: VLJepa, path: str, config: CostConfig) -> tuple[list[tuple[float, float]], torch.Tensor]:
    """Window bounds and X-encoder tokens (W, N, D) of the stream's first `stream_seconds`."""
    bounds, clips = [], []
    for (start, end), frames in iter_windows(
        path, config.window_seconds, config.stride_seconds, model.config.x_encoder.num_frames
    ):
        if end > config.stream_seconds:
            break
        bounds.append((start, end))
        clips.append(model.x_encoder.preprocess(frames))
    video = torch.stack(clips)
    return bounds, torch.cat([model.x_encoder(video[i : i + 32]) for i in range(0, len(video), 32)])


def _stream_costs(
    vljepa: VLJepaAnswerer,
    token_vlm: TokenVLMAnswerer,
    bounds: list[tuple[float, float]],
    tokens: torch.Tensor,
    hz: float,
    x_encoder_mflops: float,
) -> list[dict]:
    """Per second of video; `..._with_x_encoder` adds the X-encoder on every window a method must see
    (selective decoding embeds every window; evenly spaced generation needs only its own)."""
    model, times = vljepa.model, window_times(bounds)
    edges = (bounds[0][0], bounds[-1][1])
    duration = edges[1] - edges[0]

    def selective() -> None:
        embeddings = predict_tokens(model, tokens, [None] * len(tokens)).numpy()
        decode_segments(model, with_edges(ward(embeddings, times, segment_count(times, hz)), *edges), embeddings)

    sparse = [segment.members[len(segment.members) // 2] for segment in uniform(times, hz)]
    # (method, decodes, windows the X-encoder must see, work)
    rows = [
        ("VL-JEPA, decode every window", len(tokens), len(tokens), lambda: vljepa.caption(tokens)),
        (f"VL-JEPA, selective (Ward, {hz} Hz)", segment_count(times, hz), len(tokens), selective),
        ("token VLM, generate every window", len(tokens), len(tokens), lambda: token_vlm.caption(tokens)),
        (
            f"token VLM, generate at {hz} Hz (evenly spaced)",
            len(sparse),
            len(sparse),
            lambda: token_vlm.caption(tokens[sparse]),
        ),
    ]
    out = []
    for name, decodes, encoded, work in rows:
        cost = measure(work, 1)
        out.append(
            {
                "method": name,
                "decodes": decodes,
                "x_encoder_windows": encoded,
                "ms_per_video_second": cost["ms_per_answer"] / duration,
                "mflops_per_video_second": cost["mflops_per_answer"] / duration,
                "mflops_per_video_second_with_x_encoder": (cost["mflops_per_answer"] + encoded * x_encoder_mflops)
                / duration,
            }
        )
    return out


def inference_costs(
    vljepa_model: VLJepa,
    token_vlm_model: TokenVLM,
    world: str | Path,
    cache_dir: str | Path,
    config: CostConfig,
    batch_size: int = 64,
    progress: bool = True,
) -> dict:
    """Every measurement of the module docstring on a world's test clips and first stream; `vljepa_model`
    needs its Y-decoder; the token VLM answers `batch_size` samples per call, as in the comparison."""
    world = Path(world)
    vljepa, token_vlm = VLJepaAnswerer(vljepa_model), TokenVLMAnswerer(token_vlm_model, batch_size, progress=False)
    model, prompt = vljepa_model, vljepa_model.config.classification_prompt
    test = Split.load(world / "test.jsonl", FeatureCache(cache_dir, model.x_encoder), progress)
    train_captions = list(dict.fromkeys(r.caption for r in load_manifest(world / "train.jsonl") if r.caption))
    stream = world / json.loads((world / "streams.jsonl").read_text().splitlines()[0])["video"]
    labelled = [r for r in test.records if r.label is not None][: config.clips]
    asked = [r for r in test.records if r.question]
    all_answers = list(dict.fromkeys(r.answer for r in asked))
    asked = asked[: config.clips]
    captioned = list(dict.fromkeys(r.clip for r in test.records if r.caption))[: config.clips]
    classes = class_names([r for r in test.records if r.label is not None], test.manifest)

    results: dict = {"clips": config.clips}
    with progress_bar("inference cost", len(config.class_counts) + 4, progress) as advance:
        x_config = model.config.x_encoder
        video = torch.zeros(1, x_config.num_frames, 3, x_config.image_size, x_config.image_size)
        results["x_encoder_per_clip"] = measure(lambda: model.x_encoder(video), 1)
        texts = train_captions[: config.clips]
        with torch.no_grad():
            results["y_encoder_per_text"] = measure(
                lambda: model.y_encoder.head(model.y_encoder.text_model.encode(texts, convert_to_tensor=True)),
                len(texts),
            )
        advance()
        label_tokens = test.stack([r.clip for r in labelled])
        results["classification"] = []
        for count in config.class_counts:
            names = _class_names(classes, train_captions, count)
            results["classification"].append(
                {
                    "classes": count,
                    "vljepa": measure(lambda names=names: vljepa.rank(label_tokens, prompt, names), len(labelled)),
                    "token_vlm": measure(
                        lambda names=names: token_vlm.rank(label_tokens, prompt, names), len(labelled)
                    ),
                }
            )
            advance()
        questions, options = [r.question for r in asked], [r.options or all_answers for r in asked]
        question_tokens = test.stack([r.clip for r in asked])
        results["mc_vqa"] = {
            "mean_options": sum(map(len, options)) / len(options),
            "vljepa": measure(lambda: vljepa.choose(question_tokens, questions, options), len(asked)),
            "token_vlm": measure(lambda: token_vlm.choose(question_tokens, questions, options), len(asked)),
        }
        advance()
        caption_tokens = test.stack(captioned)
        results["captioning"] = {
            "vljepa": measure(lambda: vljepa.caption(caption_tokens), len(captioned)),
            "token_vlm": measure(lambda: token_vlm.caption(caption_tokens), len(captioned)),
        }
        advance()
        bounds, window_tokens = stream_tokens(model, stream, config)
        results["stream"] = {
            "video": str(stream),
            "video_seconds": bounds[-1][1] - bounds[0][0],
            "windows": len(bounds),
            "rows": _stream_costs(
                vljepa, token_vlm, bounds, window_tokens, config.hz, results["x_encoder_per_clip"]["mflops_per_answer"]
            ),
        }
        advance()
    return results
