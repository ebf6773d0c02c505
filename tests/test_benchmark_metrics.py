"""Benchmark metrics against hand-computed values, and the contamination check on planted duplicates."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from benchmark_fixtures import scene

from vljepa.data.video import write_video
from vljepa.eval.benchmark import overall_accuracy
from vljepa.eval.contamination import check_contamination, frame_signature, recorded_training_manifests
from vljepa.tasks.retrieve import rank_statistics, recall_at_k, retrieval_metrics
from vljepa.tasks.vqa import yes_no_metrics


def test_recall_and_ranks_of_one_relevant_item_per_query():
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.4, 0.6, 0.1]])
    relevant = torch.eye(3, dtype=torch.bool)  # ranks: 1, 2, 3
    assert recall_at_k(similarity, relevant, ks=(1, 2, 3)) == pytest.approx({"R@1": 1 / 3, "R@2": 2 / 3, "R@3": 1.0})
    assert rank_statistics(similarity, relevant) == {"MdR": 2.0, "MnR": 2.0}


def test_median_rank_of_an_even_count_is_the_mean_of_the_middle_two():
    similarity = torch.tensor([[4.0, 3, 2, 1]]).repeat(4, 1)  # every query ranks the candidates 0, 1, 2, 3
    assert rank_statistics(similarity, torch.eye(4, dtype=torch.bool)) == {"MdR": 2.5, "MnR": 2.5}


def test_a_tie_counts_against_the_query_so_collapse_scores_worst():
    collapsed = torch.zeros(3, 3)
    assert recall_at_k(collapsed, torch.eye(3, dtype=torch.bool), ks=(1, 3)) == {"R@1": 0.0, "R@3": 1.0}
    assert rank_statistics(collapsed, torch.eye(3, dtype=torch.bool)) == {"MdR": 3.0, "MnR": 3.0}
    two_relevant = torch.tensor([[True, True, False]])  # tied with one relevant and one irrelevant: rank 2
    assert rank_statistics(torch.zeros(1, 3), two_relevant) == {"MdR": 2.0, "MnR": 2.0}


def test_video_to_text_counts_any_of_a_videos_captions():
    texts = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4], [0.7, 0.6]])  # captions 0, 1 of video 0; 2, 3 of video 1
    relevant = torch.tensor([[True, False], [True, False], [False, True], [False, True]])
    metrics = retrieval_metrics(torch.eye(2), texts, relevant)
    # t2v ranks 2, 1, 1, 2; v2t: video 0's best caption (1) first, video 1's best (3) second
    assert metrics == pytest.approx(
        {
            **{"t2v_R@1": 0.5, "t2v_R@5": 1.0, "t2v_R@10": 1.0, "t2v_MdR": 1.5, "t2v_MnR": 1.5},
            **{"v2t_R@1": 0.5, "v2t_R@5": 1.0, "v2t_R@10": 1.0, "v2t_MdR": 1.5, "v2t_MnR": 1.5},
        }
    )


def test_pope_precision_recall_f1_and_yes_ratio():
    chosen = ["yes", "yes", "yes", "yes", "no", "no"]
    truth = ["yes", "no", "no", "yes", "yes", "no"]  # 2 true positives of 4 "yes" predictions and 3 "yes" answers
    assert yes_no_metrics(chosen, truth) == pytest.approx(
        {"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "yes_ratio": 4 / 6}
    )
    assert yes_no_metrics(["no", "no"], ["yes", "no"]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0}


def test_overall_accuracy_weights_types_by_their_counts():
    assert overall_accuracy({"simple": {"num": 3, "accuracy": 1.0}, "complex": {"num": 1, "accuracy": 0.0}}) == {
        "num": 4,
        "accuracy": 0.75,
    }


def write_manifest(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def planted(tmp_path):
    """A training manifest, and a test manifest holding a byte copy of one training video, a re-encode
    (another crf) of the other, and an unrelated video."""
    write_video(tmp_path / "train" / "a.mp4", scene(1), fps=8, crf=18)
    write_video(tmp_path / "train" / "b.mp4", scene(2), fps=8, crf=18)
    train = write_manifest(
        tmp_path / "train" / "train.jsonl",
        [
            {"video": "a.mp4", "caption": "a red ball rolls"},
            {"video": "b.mp4", "caption": "a cat sleeps", "question": "How many cats?", "answer": "one"},
        ],
    )
    (tmp_path / "test").mkdir()
    shutil.copy(tmp_path / "train" / "b.mp4", tmp_path / "test" / "copy.mp4")
    write_video(tmp_path / "test" / "reencoded.mp4", scene(1), fps=8, crf=32)
    write_video(tmp_path / "test" / "other.mp4", scene(3), fps=8, crf=18)
    test = write_manifest(
        tmp_path / "test" / "test.jsonl",
        [
            {"video": "copy.mp4", "caption": "something new"},
            {"video": "reencoded.mp4", "caption": "A  Red ball ROLLS "},
            {"video": "other.mp4", "question": "how many  cats?", "answer": "two"},
        ],
    )
    return tmp_path, train, test


def test_contamination_finds_a_copy_a_reencode_and_a_caption_but_not_another_video(planted):
    root, train, test = planted
    result = check_contamination(test, [str(train)], progress=False)
    path = lambda *parts: str(root.joinpath(*parts).resolve())  # noqa: E731
    assert result["complete"] and result["overlap"]
    assert (result["test_files"], result["training_files"], result["unhashed_test_files"]) == (3, 2, 0)
    assert result["examples"]["identical_files"] == [
        {"test": path("test", "copy.mp4"), "train": path("train", "b.mp4")}
    ]
    [near] = result["examples"]["near_duplicate_first_frames"]
    assert (near["test"], near["train"]) == (path("test", "reencoded.mp4"), path("train", "a.mp4"))
    assert near["correlation"] >= 0.98
    assert result["examples"]["caption_matches"] == ["a red ball rolls"]
    assert result["examples"]["question_matches"] == ["how many cats?"]
    assert (result["identical_files"], result["near_duplicate_first_frames"], result["caption_matches"]) == (1, 1, 1)


def test_an_unrelated_test_set_does_not_overlap(planted):
    root, train, _ = planted
    test = write_manifest(root / "test" / "clean.jsonl", [{"video": "other.mp4", "caption": "a dog barks"}])
    result = check_contamination(test, [str(train)], progress=False)
    assert result["complete"] and not result["overlap"]
    assert (result["identical_files"], result["near_duplicate_first_frames"], result["caption_matches"]) == (0, 0, 0)


def test_a_video_that_starts_like_a_training_video_and_then_differs_is_not_a_duplicate(planted):
    root, train, _ = planted
    start_alike = scene(4, frames=20)
    start_alike[0] = scene(1)[0]  # the first frame of training video a.mp4, then another scene
    write_video(root / "test" / "alike.mp4", start_alike, fps=8)
    test = write_manifest(root / "test" / "alike.jsonl", [{"video": "alike.mp4", "caption": "a dog barks"}])
    assert check_contamination(test, [str(train)], progress=False)["near_duplicate_first_frames"] == 0
    write_video(root / "test" / "a_again.mp4", scene(1, frames=20), fps=8, crf=30)  # a longer re-encode of a.mp4
    test = write_manifest(root / "test" / "again.jsonl", [{"video": "a_again.mp4", "caption": "a dog barks"}])
    assert check_contamination(test, [str(train)], progress=False)["near_duplicate_first_frames"] == 1


def test_a_flat_first_frame_is_not_hashed():
    assert frame_signature(np.full((32, 32, 3), 7, np.uint8)) is None
    signature = frame_signature(scene(5)[0])
    assert signature is not None and signature[0].shape == (8,) and signature[1].shape == (192,)


def test_training_manifests_come_from_the_run_config(tmp_path):
    model = tmp_path / "run" / "final"
    model.mkdir(parents=True)
    assert recorded_training_manifests(model) == (
        [],
        [f"{model}: no train_config.json (the model's training data is unknown)"],
    )
    (model / "train_config.json").write_text(json.dumps({"train_manifest": "w/train.jsonl", "val_manifest": None}))
    assert recorded_training_manifests(model) == (["w/train.jsonl"], [])
    result = check_contamination(
        write_manifest(tmp_path / "t.jsonl", [{"video": "x.mp4"}]), ["absent.jsonl"], progress=False
    )
    assert not result["complete"] and result["problems"] == ["absent.jsonl: manifest not found"]
