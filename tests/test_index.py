"""The persistent video index: build, search, add, save/open, model check, the approximate index, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import moving_square, tiny_model_config
from typer.testing import CliRunner

from vljepa.cli import app
from vljepa.data.manifest import ClipRef
from vljepa.data.video import read_clip, sliding_windows, video_duration, write_video
from vljepa.model import VLJepa
from vljepa.tasks.index import Hit, IndexModelMismatch, IndexSettings, VideoIndex, VideoIndexError

runner = CliRunner()
CAPTIONS = ["a red square moves right", "a green square moves left", "a blue square moves right"]
MOTIONS = [(1, 0, 8), (-1, 1, 46), (1, 2, 8)]  # (direction, colour channel, start x) of each caption's clip


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Three clips of distinct colours and a tiny model whose predictor was fitted to their captions."""
    root = tmp_path_factory.mktemp("library")
    videos = []
    for number, motion in enumerate(MOTIONS):
        videos.append(root / "videos" / f"{number}.mp4")
        write_video(videos[-1], moving_square(*motion), fps=8)
    torch.manual_seed(0)
    model = VLJepa(tiny_model_config())
    with torch.no_grad():
        tokens = model.visual_tokens(torch.stack([read_clip(v, 4) for v in videos]))
        targets = model.y_encoder(CAPTIONS)
    optimizer = torch.optim.Adam(model.predictor.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        model.loss(model.predict(tokens), targets, CAPTIONS).loss.backward()
        optimizer.step()
    model.save_pretrained(root / "model")
    return root, videos, VLJepa.from_pretrained(root / "model", bf16=False)


def test_each_caption_finds_its_clip_and_ids_map_back_to_files(library, tmp_path):
    root, videos, model = library
    index = VideoIndex.build(model, [str(v) for v in videos], tmp_path / "index", progress=False)
    assert len(index) == 3 and index.meta["faiss"] == {"type": "flat"}
    hits = index.search_text(model, CAPTIONS, k=3)
    assert [row[0] for row in hits] == [
        Hit(number, str(videos[number].resolve()), None, None, row[0].score) for number, row in enumerate(hits)
    ]
    with model.inference():
        expected = model.encode_text(CAPTIONS) @ model.encode_video([read_clip(v, 4) for v in videos]).T
    for row, scores in zip(hits, expected):
        assert [hit.id for hit in row] == scores.argsort(descending=True).tolist()
        assert [hit.score for hit in row] == pytest.approx(scores.sort(descending=True).values.tolist(), abs=1e-5)
    assert [len(row) for row in index.search_text(model, CAPTIONS[:1], k=10)] == [3]  # k > clips: every clip


def test_save_open_round_trip_add_and_skipped_clips(library, tmp_path):
    root, videos, model = library
    built = VideoIndex.build(model, [ClipRef(str(videos[0]))], tmp_path / "index", progress=False)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    opened = VideoIndex.open(tmp_path / "index", model)
    assert opened.clips == built.clips and opened.meta == built.meta
    assert opened.add(model, [*videos, tmp_path / "broken.mp4", (str(videos[1]), None, None)], progress=False) == 2
    assert (
        list(opened.failed) == [str(tmp_path / "broken.mp4")]
        and "cannot decode" in opened.failed[str(tmp_path / "broken.mp4")]
    )
    assert len(VideoIndex.open(tmp_path / "index")) == 1  # `add` is in memory until `save`
    opened.save()
    again = VideoIndex.open(tmp_path / "index", model)
    assert [c.path for c in again.clips] == [str(v.resolve()) for v in videos]
    assert again.search_text(model, CAPTIONS, 2) == opened.search_text(model, CAPTIONS, 2)
    assert again.add(model, videos, progress=False) == 0  # already indexed


def test_an_index_refuses_another_model(library, tmp_path):
    root, videos, model = library
    VideoIndex.build(model, videos[:1], tmp_path / "index", progress=False, model_source="runs/first")
    torch.manual_seed(1)
    other = VLJepa(tiny_model_config())
    with pytest.raises(IndexModelMismatch) as caught:
        VideoIndex.open(tmp_path / "index", other)
    message = str(caught.value)
    recorded = json.loads((tmp_path / "index" / "meta.json").read_text())["model"]["fingerprint"]
    assert message.startswith(f"{tmp_path / 'index'}: built by the model with fingerprint {recorded} (runs/first)")
    assert f"(fingerprint {other.fingerprint()})" in message and other.fingerprint() != recorded
    with pytest.raises(IndexModelMismatch):
        VideoIndex.open(tmp_path / "index").search_text(other, ["a red square"], 1)


def test_a_growing_index_becomes_approximate_with_recall_against_exact(library, tmp_path):
    root, videos, model = library
    settings = IndexSettings(flat_limit=800, dims_per_code=2, k_factor=20, train_size=700)
    index = VideoIndex.create(model, tmp_path / "index", settings)
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(1000, 32, generator=generator)
    clips = [ClipRef(f"/library/{i}.mp4") for i in range(1000)]
    index.add_vectors(vectors[:800], clips[:800])
    assert index.meta["faiss"] == {"type": "flat"}
    index.add_vectors(vectors[800:900], clips[800:900])  # past the limit: re-indexed
    record = {"type": "pq_fastscan_refine", "subquantizers": 16, "bits": 4, "k_factor": 20, "trained_on": 700}
    assert index.meta["faiss"] == record
    index.add_vectors(vectors[900:], clips[900:])  # encoded with the trained codebooks
    index.save()
    reopened = VideoIndex.open(tmp_path / "index")
    assert reopened.meta["faiss"] == record and reopened.vectors.k_factor == 20 and len(reopened) == 1000
    queries = torch.randn(100, 32, generator=generator)
    normalised = torch.nn.functional.normalize
    exact = (normalised(queries, dim=-1) @ normalised(vectors, dim=-1).T).topk(10)
    found = reopened.search(queries, 10)
    recall = np.mean([len({h.id for h in row} & set(true.tolist())) / 10 for row, true in zip(found, exact.indices)])
    assert recall >= 0.95
    assert [h.path for h in found[0]] == [f"/library/{h.id}.mp4" for h in found[0]]
    assert [h.score for h in found[0]] == pytest.approx(
        [float(normalised(queries[0], dim=-1) @ normalised(vectors[h.id], dim=-1)) for h in found[0]], abs=1e-5
    )  # re-ranked exactly: the scores are the true cosines


def test_opening_a_missing_foreign_or_damaged_folder_is_a_clear_error(library, tmp_path):
    with pytest.raises(VideoIndexError, match=f"^{tmp_path / 'nothing'}: no such index folder$"):
        VideoIndex.open(tmp_path / "nothing")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"")
    with pytest.raises(VideoIndexError, match="not a video index"):
        VideoIndex.open(tmp_path / "photos")
    root, videos, model = library
    VideoIndex.build(model, videos[:2], tmp_path / "index", progress=False)
    (tmp_path / "index" / "clips.json").write_text(json.dumps([[str(videos[0]), None, None]]))
    with pytest.raises(VideoIndexError, match=r"damaged video index \(2 vectors of 32 dimensions, 1 clips"):
        VideoIndex.open(tmp_path / "index")
    (tmp_path / "index" / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(VideoIndexError, match=f"^{tmp_path / 'index'}: damaged video index"):
        VideoIndex.open(tmp_path / "index")


def test_cli_build_search_add_and_retrieve_with_an_index(library, tmp_path):
    root, videos, _ = library
    model, index = str(root / "model"), str(tmp_path / "index")
    result = runner.invoke(
        app, ["index", "build", "--videos", str(root / "videos"), "-m", model, "--out", index, "--window", "0.5"]
    )
    assert result.exit_code == 0, result.output
    windows = sliding_windows(video_duration(videos[0]), 0.5, 0.5)
    assert len(windows) == 2 and result.stdout == f"{index}: 6 clips indexed (flat), 0 skipped\n"
    opened = VideoIndex.open(index)
    assert opened.clips == [ClipRef(str(v.resolve()), start, end) for v in videos for start, end in windows]

    result = runner.invoke(app, ["search", index, CAPTIONS[1], "-m", model, "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("  1  +") and lines[1].startswith("  2  +")
    assert lines[0].endswith(f"{videos[1].resolve()}  [0.00-0.50 s]") or lines[0].endswith(
        f"{videos[1].resolve()}  [0.50-1.00 s]"
    )
    result = runner.invoke(app, ["retrieve", "-m", model, "--query", CAPTIONS[1], "--index", index, "--top", "1"])
    assert result.exit_code == 0 and result.stdout.strip() == lines[0][5:]

    manifest = tmp_path / "more.jsonl"
    manifest.write_text(json.dumps({"video": str(videos[2]), "caption": "x"}) + "\n")
    result = runner.invoke(app, ["index", "add", index, "--videos", str(manifest), "-m", model])
    assert result.exit_code == 0 and result.stdout == f"{index}: 1 clips added, 7 in all (flat), 0 skipped\n"
    assert VideoIndex.open(index).clips[-1] == ClipRef(str(videos[2].resolve()))
    result = runner.invoke(
        app, ["index", "add", index, "--videos", str(root / "videos"), "-m", model, "--window", "0.5"]
    )
    assert result.exit_code == 0 and result.stdout == f"{index}: 0 clips added, 7 in all (flat), 0 skipped\n"


def test_cli_bad_inputs_are_one_line_errors(library, tmp_path):
    root, videos, _ = library
    model = str(root / "model")
    (tmp_path / "empty").mkdir()
    cases = [
        (["search", str(tmp_path / "nope"), "a square", "-m", model], f"{tmp_path / 'nope'}: no such index folder"),
        (
            ["index", "build", "--videos", str(tmp_path / "empty"), "-m", model, "--out", str(tmp_path / "i")],
            f"{tmp_path / 'empty'}: no video or image files",
        ),
        (
            ["index", "build", "--videos", str(root / "videos"), "-m", model, "--out", str(root / "videos")],
            f"{root / 'videos'}: exists and is not a video index; give a new or empty folder",
        ),
        (
            ["index", "add", str(tmp_path / "nope"), "--videos", str(root / "videos"), "-m", model],
            f"{tmp_path / 'nope'}: no such index folder",
        ),
        (
            ["index", "build", "--videos", str(tmp_path / "nope"), "-m", model, "--out", str(tmp_path / "i")],
            f"{tmp_path / 'nope'}: no such folder or manifest",
        ),
        (
            ["index", "build", "--videos", str(videos[0]), "-m", model, "--out", str(tmp_path / "i")],
            f"{videos[0]}: not a folder of videos, a JSONL manifest (*.jsonl) or shards (*.tar)",
        ),
        (
            [
                "index",
                "build",
                "--videos",
                str(root / "videos"),
                "-m",
                model,
                "--out",
                str(tmp_path / "i"),
                "--window",
                "0",
            ],
            "window (0.0) and stride (None) must be positive numbers of seconds",
        ),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, arguments)
        assert (result.exit_code, result.stderr) == (2, f"error: {message}\n"), arguments
    result = runner.invoke(app, ["retrieve", "-m", model, "--query", "a square"])
    assert result.exit_code == 2 and "give either --videos or --index" in result.stderr


def test_cli_build_reports_and_skips_a_video_that_cannot_be_decoded(library, tmp_path):
    root, videos, _ = library
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(videos[0].read_bytes())
    (tmp_path / "videos" / "b.mp4").write_bytes(b"not a video")
    index = tmp_path / "index"
    arguments = ["index", "build", "--videos", str(tmp_path / "videos"), "-m", str(root / "model"), "--out", str(index)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and skipped[0].startswith(f"skipped {tmp_path / 'videos' / 'b.mp4'}: cannot decode")
    assert result.stdout == f"{index}: 1 clips indexed (flat), 1 skipped\n"
    assert VideoIndex.open(index).clips == [ClipRef(str(tmp_path / "videos" / "a.mp4"))]


def test_search_through_an_index_gives_the_evaluation_suites_retrieval(library, tmp_path):
    from vector_index import compare_with_eval

    root, videos, _ = library
    manifest = tmp_path / "captions.jsonl"
    manifest.write_text("".join(json.dumps({"video": str(v), "caption": c}) + "\n" for v, c in zip(videos, CAPTIONS)))
    result = compare_with_eval(root / "model", manifest, tmp_path / "cache")
    assert result["clips_indexed"] == 3 and result["skipped"] == {}
    assert result["index_of_the_suite_predictions"] == pytest.approx(result["eval_suite"])
    assert result["index_built_from_videos"]["t2v_R@1"] == 1.0  # each caption finds its own clip first


def test_a_save_from_a_stale_copy_is_refused_instead_of_losing_clips(library, tmp_path):
    root, videos, model = library
    VideoIndex.build(model, videos[:1], tmp_path / "index", progress=False)
    first, second = VideoIndex.open(tmp_path / "index"), VideoIndex.open(tmp_path / "index")
    first.add(model, videos[1:2], progress=False)
    first.save()
    second.add(model, videos[2:], progress=False)
    with pytest.raises(
        VideoIndexError, match="saved by another writer \\(revision 2\\) since this copy was read \\(revision 1\\)"
    ):
        second.save()
    assert [c.path for c in VideoIndex.open(tmp_path / "index").clips] == [str(v.resolve()) for v in videos[:2]]
    first.add(model, videos[2:], progress=False)
    first.save()  # the writer that saved last may save again
    assert len(VideoIndex.open(tmp_path / "index")) == 3
    assert VideoIndex.build(model, videos[:1], tmp_path / "index", progress=False).meta["revision"] == 4  # a rebuild
