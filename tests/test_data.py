"""Manifests, video decoding, preprocessing and the frozen-feature cache."""

from __future__ import annotations

import json

import pytest
import torch

from vljepa.config import XEncoderConfig
from vljepa.core.ragged import pad_rows
from vljepa.data.feature_cache import FeatureCache, read_view
from vljepa.data.manifest import ClipRef, ManifestError, class_names, load_manifest
from vljepa.data.video import VideoError, read_clip, sample_indices, write_video
from vljepa.model.x_encoder import XEncoder, preprocess_clip


def test_generated_mp4_decodes_through_the_manifest(clip_manifest):
    records = load_manifest(clip_manifest)
    assert len(records) == 48 and records[0].caption and records[2].options == ["left", "right"]
    frames = read_clip(records[0].clip.path, num_frames=4)
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == torch.uint8
    # clip 0 is a red square moving right: red dominates and the red mass moves right over time
    red_x = [float((f[..., 0] > 128).nonzero()[:, 1].float().mean()) for f in frames]
    assert red_x == sorted(red_x) and red_x[-1] - red_x[0] > 10
    assert class_names(records) == ["moving right", "moving left"]


def test_time_window_and_sampling(clip_manifest):
    path = load_manifest(clip_manifest)[0].clip.path
    assert sample_indices([0.0, 0.125, 0.25, 0.375, 0.5], 3, None, None) == [0, 2, 4]
    assert sample_indices([0.0, 0.125, 0.25, 0.375, 0.5], 2, 0.2, 0.45) == [2, 3]
    late = read_clip(path, 1, start=0.8, end=1.0)[0]
    early = read_clip(path, 1, start=0.0, end=0.1)[0]
    assert not torch.equal(late, early)


def test_image_is_a_one_frame_video(tmp_path):
    import av
    import numpy as np

    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 1] = 200
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.to_image().save(tmp_path / "green.png")
    clip = read_clip(tmp_path / "green.png", num_frames=4)
    assert clip.shape == (4, 20, 30, 3) and int(clip[0, 0, 0, 1]) == 200


def test_missing_and_corrupt_videos_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="nowhere.mp4"):
        read_clip(tmp_path / "nowhere.mp4", 4)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01 this is not a video" * 50)
    with pytest.raises(VideoError, match="corrupt.mp4"):
        read_clip(corrupt, 4)


def test_manifest_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"video": "a.mp4", "caption": "x"}\n{"caption": "no video"}\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl:2"):
        load_manifest(path)
    path.write_text('{"video": "a.mp4"\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl:1: invalid JSON"):
        load_manifest(path)


def test_preprocessing_resizes_crops_and_normalises():
    config = XEncoderConfig(image_size=32)
    frames = torch.full((3, 48, 64, 3), 255, dtype=torch.uint8)
    video = preprocess_clip(frames, config)
    assert video.shape == (3, 3, 32, 32)
    expected = (1 - torch.tensor(config.mean)) / torch.tensor(config.std)
    assert torch.allclose(video[0, :, 5, 5], expected, atol=1e-4)


class CountingEncoder(XEncoder):
    calls = 0

    def forward(self, video):
        CountingEncoder.calls += len(video)
        return super().forward(video)


def test_feature_cache_computes_once_and_invalidates(tmp_path, clip_manifest):
    config = XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4)
    clips = list(dict.fromkeys(r.clip for r in load_manifest(clip_manifest)))
    encoder = CountingEncoder(config)
    first = FeatureCache(tmp_path, encoder).tokens(clips, progress=False)
    assert CountingEncoder.calls == 16 and len(first) == 16
    again = FeatureCache(tmp_path, encoder).tokens(clips, progress=False)  # a new process: read from disk
    assert CountingEncoder.calls == 16
    assert all(torch.equal(first[c], again[c]) for c in first)
    direct = encoder(encoder.preprocess(read_clip(clips[0].path, 4)).unsqueeze(0))[0]
    assert torch.allclose(first[clips[0]].float(), direct, atol=1e-2)
    # other weights -> another cache; another view -> another cache
    FeatureCache(
        tmp_path, CountingEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4, seed=1))
    ).tokens(clips[:3], progress=False)
    assert CountingEncoder.calls == 16 + 1 + 3
    FeatureCache(tmp_path, encoder, view="single_frame").tokens(clips[:3], progress=False)
    assert CountingEncoder.calls == 16 + 1 + 3 + 3


def test_the_single_frame_view_is_the_middle_of_the_window_whatever_the_frame_count(tmp_path):
    """Not the middle of the sampled frames: 4 of 16 are frames 0, 5, 10, 15, and frame 10 shows where a
    moving shape is heading. The window's middle frame is 8 (7.5 rounded to even), at any count."""
    import numpy as np

    path = tmp_path / "sixteen.mp4"
    write_video(path, (np.full((16, 16, 3), 10 * index, np.uint8) for index in range(16)), fps=8, crf=0)
    for num_frames in (1, 4, 8):
        frames = read_view(ClipRef(str(path), None, None), num_frames, "single_frame")
        assert frames.shape[0] == num_frames and (frames == frames[:1]).all()
        assert abs(float(frames.float().mean()) - 80) < 3  # frame 8
    assert abs(float(read_view(ClipRef(str(path), None, None), 4, "clip")[2].float().mean()) - 100) < 3


def test_feature_cache_skips_unreadable_clips(tmp_path, clip_manifest):
    good = json.loads(clip_manifest.read_text().splitlines()[0])
    lines = [json.dumps({**good, "video": str(clip_manifest.parent / good["video"])})]
    (tmp_path / "broken.mp4").write_bytes(b"junk" * 100)
    lines.append(json.dumps({"video": str(tmp_path / "broken.mp4"), "caption": "broken"}))
    lines.append(json.dumps({"video": str(tmp_path / "missing.mp4"), "caption": "missing"}))
    manifest = tmp_path / "mixed.jsonl"
    manifest.write_text("\n".join(lines))
    cache = FeatureCache(
        tmp_path / "cache", XEncoder(XEncoderConfig(hidden_size=32, num_layers=1, num_heads=2, num_frames=4))
    )
    tokens = cache.tokens([r.clip for r in load_manifest(manifest)], progress=False)
    assert len(tokens) == 1
    assert set(cache.failed) == {str(tmp_path / "broken.mp4"), str(tmp_path / "missing.mp4")}
    assert "broken.mp4" in cache.failed[str(tmp_path / "broken.mp4")]


def test_pad_rows_pads_either_side_and_masks_the_real_positions():
    ids, mask = pad_rows([(5, 6, 7), (8,), ()], value=-1)
    assert ids.tolist() == [[5, 6, 7], [8, -1, -1], [-1, -1, -1]] and ids.dtype == torch.long
    assert mask.tolist() == [[True, True, True], [True, False, False], [False, False, False]]
    ids, mask = pad_rows([(5, 6, 7), (8,)], value=0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[True] * 3, [False, False, True]]
    assert pad_rows([(), ()], value=0)[0].shape == (2, 0) and pad_rows([], value=0)[0].shape == (0, 0)


def test_probe_tasks_come_from_the_manifests(tmp_path, clip_manifest):
    from vljepa.eval.probe import class_tasks, task_labels

    def labels_of(manifest):
        return task_labels(str(manifest), class_tasks(str(manifest), load_manifest(manifest)))

    labels = labels_of(clip_manifest)
    assert list(labels) == ["action"] and len(labels["action"]) == 16
    assert sorted(set(labels["action"].values())) == ["moving left", "moving right"]
    records = [json.loads(line) for line in clip_manifest.read_text().splitlines()]
    for record in records:
        record["video"] = f"{clip_manifest.parent}/{record['video']}"
        if "label" in record:  # a named task: is the clip's number even?
            record["probe"] = {"even": "yes" if int(record["video"][-6:-4]) % 2 == 0 else "no"}
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "probe_tasks.json").write_text(json.dumps({"leftward": ["moving left"]}))
    labels = labels_of(manifest)
    assert list(labels) == ["action", "leftward", "even"]
    assert set(labels["leftward"].values()) == {"moving left"} and len(labels["leftward"]) == 8
    assert list(labels["even"].values()).count("yes") == 8
    (tmp_path / "probe_tasks.json").write_text(json.dumps({"leftward": "moving left"}))
    with pytest.raises(ManifestError, match=r"probe_tasks.json: expected an object mapping task names to lists"):
        labels_of(manifest)
    (tmp_path / "probe_tasks.json").unlink()
    records[1]["probe"] = {"even": 3}
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ManifestError, match="`probe` field must map task names to class names"):
        labels_of(manifest)


def test_frames_are_decoded_at_a_bounded_size_whatever_the_source():
    import av
    import numpy as np

    from vljepa.data.video import DECODE_MAX_SHORT_SIDE, rgb_converter

    convert = rgb_converter()
    huge = av.VideoFrame.from_ndarray(np.full((4320, 7680, 3), 200, np.uint8), format="rgb24").reformat(
        format="yuv420p"
    )
    small = av.VideoFrame.from_ndarray(np.full((360, 640, 3), 200, np.uint8), format="rgb24").reformat(format="yuv420p")
    assert convert(huge).shape == (DECODE_MAX_SHORT_SIDE, round(7680 * DECODE_MAX_SHORT_SIDE / 4320), 3)
    assert convert(small).shape == (360, 640, 3)  # below the bound: untouched
    assert abs(int(convert(huge).mean()) - 200) <= 2  # an area average, not a crop
