"""Contamination check: did the model train on the benchmark's test videos, images or texts?

A benchmark figure means nothing if its test items were in the training data. The check compares a
test manifest with the model's training manifests, the ones its run recorded in `train_config.json`
(`train_manifest`, `val_manifest`: saved beside every checkpoint by the trainer; the validation
manifest counts, since it chose checkpoints), plus any the caller adds.
Design decisions (ours):
- Same file: sha256 of the bytes. Catches copies under another name.
- Same content re-encoded (another codec, crf or container changes every byte): decoded frames, in
  three steps. A perceptual hash of the first frame (64 bits from the 8x8 lowest DCT frequencies of a
  32x32 grayscale downscale, each bit "above the median") finds candidates cheaply: training files
  within `HASH_CANDIDATE_BITS` bits (a re-encode moves a few bits, more on a mostly flat frame where
  many coefficients sit near the median; unrelated content moves about half of the 64). A candidate
  must then match in colour: the 8x8 RGB thumbnails of the two first frames correlate at
  `MIN_CORRELATION` or more (a re-encode keeps 0.99+). Last, two videos must also match at their
  `LATER_FRAME`-th frame (or the shorter one's last frame), decoded for these candidates only: clips that
  start from the same scene and then differ (the built-in world has many: the same shapes in the same
  places, different actions) are different videos. An image has no later frame: its first frame decides.
  A flat first frame (black or one colour: many videos fade in) says nothing about the content and is
  not compared; it is counted as unhashed. Resizing, cropping or trimming the start defeats this check
  (a known limit: it looks for re-encodes, not edits).
- Texts: exact matches after case-folding and collapsing whitespace. A test caption seen in training is
  overlap; a repeated question is reported but is not overlap by itself, since VQA sets ask templated
  questions ("Is there a dog in the image?") of every image: a leaked question comes with its image,
  which the media checks find.
- `overlap` is true when any file, first frame or caption matches; `complete` is false when a training
  manifest is unknown or unreadable, so that "no overlap" is never claimed on a partial check.
  Relative manifest paths in `train_config.json` are read from the current folder, as training did.
- Cost: every test and training file is read once (hashed, first frame decoded); nothing is cached.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RUN_CONFIG_FILE
from ..core.progress import progress_bar
from ..data.manifest import ManifestError, Record
from ..data.shards import load_records
from ..data.video import VideoError, read_leading_frames

HASH_CANDIDATE_BITS = 16  # of 64: hash distance up to which a training file is a candidate
MIN_CORRELATION = 0.98  # of two frames' 8x8 RGB thumbnails: the same picture
LATER_FRAME = 16  # the frame (1-based) at which two videos with matching first frames must match too
FLAT_FRAME_STD = 2.0  # grey levels: below this the first frame is flat and not hashed
EXAMPLES = 10  # matches listed per kind in the result (the counts are complete)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _dct_matrix(n: int) -> np.ndarray:
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.cos(np.pi * (2 * x + 1) * k / (2 * n))


_DCT32 = _dct_matrix(32)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The frame's 8x8 RGB thumbnail, standardised (mean 0, std 1), as 192 float16."""
    pooled = F.adaptive_avg_pool2d(torch.from_numpy(frame.astype(np.float32)).permute(2, 0, 1), 8).numpy().ravel()
    return ((pooled - pooled.mean()) / max(float(pooled.std()), 1e-6)).astype(np.float16)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.astype(np.float32) @ b.astype(np.float32) / a.size)


def frame_signature(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(64-bit perceptual hash as 8 uint8, RGB thumbnail) of an RGB frame (H, W, 3), or None for a flat frame."""
    grey = frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if grey.std() < FLAT_FRAME_STD:
        return None
    small = F.adaptive_avg_pool2d(torch.from_numpy(grey)[None, None], 32)[0, 0].numpy()
    low = (_DCT32 @ small @ _DCT32.T)[:8, :8].ravel()
    return np.packbits(low > np.median(low)), thumbnail(frame)


def later_frames_match(first: str, second: str) -> bool:
    """Whether two files with matching first frames match at `LATER_FRAME` too (true when either is one frame)."""
    try:
        frames = [read_leading_frames(path, LATER_FRAME) for path in (first, second)]
    except VideoError:
        return False
    last = min(len(f) for f in frames) - 1  # the same frame of both: the LATER_FRAME-th or the shorter one's last
    if last == 0:
        return True
    return correlation(thumbnail(frames[0][last]), thumbnail(frames[1][last])) >= MIN_CORRELATION


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) bit distances between two stacks of packed hashes."""
    return _POPCOUNT[a[:, None, :] ^ b[None, :, :]].sum(-1, dtype=np.int64)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalise_text(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass
class MediaPrint:
    path: str
    sha256: str | None  # None: unreadable
    frame_hash: np.ndarray | None  # None: flat, unreadable or not decodable
    thumbnail: np.ndarray | None


def fingerprint(paths: list[str], description: str, progress: bool) -> list[MediaPrint]:
    prints = []
    with progress_bar(description, len(paths), progress) as advance:
        for path in paths:
            try:
                sha = file_sha256(path)
            except OSError:
                prints.append(MediaPrint(path, None, None, None))
                advance()
                continue
            try:
                signature = frame_signature(read_leading_frames(path, 1)[0])
            except VideoError:
                signature = None
            prints.append(MediaPrint(path, sha, *(signature or (None, None))))
            advance()
    return prints


def recorded_training_manifests(model_dir: str | Path) -> tuple[list[str], list[str]]:
    """(manifests the model's run recorded, problems) from `train_config.json` in the model directory or
    its run folder (the model directory's parent)."""
    model_dir = Path(model_dir)
    for folder in (model_dir, model_dir.parent):
        config_file = folder / RUN_CONFIG_FILE
        if config_file.is_file():
            try:
                config = json.loads(config_file.read_text())
            except json.JSONDecodeError as error:
                return [], [f"{config_file}: not valid JSON ({error})"]
            return [m for m in (config.get("train_manifest"), config.get("val_manifest")) if m], []
    return [], [f"{model_dir}: no {RUN_CONFIG_FILE} (the model's training data is unknown)"]


def _texts(records: list[Record]) -> tuple[set[str], set[str]]:
    captions = {normalise_text(r.caption) for r in records if r.caption}
    questions = {normalise_text(r.question) for r in records if r.question}
    return captions, questions


def check_contamination(
    test_manifest: str | Path, training_manifests: list[str], problems: list[str] = (), progress: bool = True
) -> dict:
    """Overlap of a test manifest with training manifests: identical files, near-duplicate first frames,
    identical captions and questions (see the module docstring)."""
    problems = list(problems)
    test = load_records(test_manifest)
    train: list[Record] = []
    read = []
    for manifest in training_manifests:
        try:
            train += load_records(manifest)
            read.append(str(manifest))
        except ManifestError as error:
            problems.append(str(error))
    test_prints = fingerprint(sorted({r.clip.path for r in test}), "fingerprinting test media", progress)
    train_prints = fingerprint(sorted({r.clip.path for r in train}), "fingerprinting training media", progress)

    by_sha = {p.sha256: p.path for p in train_prints if p.sha256}
    identical = [{"test": p.path, "train": by_sha[p.sha256]} for p in test_prints if p.sha256 in by_sha]
    near = _near_duplicates(test_prints, train_prints, {m["test"] for m in identical})
    test_captions, test_questions = _texts(test)
    train_captions, train_questions = _texts(train)
    captions = sorted(test_captions & train_captions)
    questions = sorted(test_questions & train_questions)
    return {
        "training_manifests": read,
        "problems": problems,
        "complete": not problems,
        "test_files": len(test_prints),
        "training_files": len(train_prints),
        "unhashed_test_files": sum(p.frame_hash is None for p in test_prints),
        "hash_candidate_bits": HASH_CANDIDATE_BITS,
        "min_correlation": MIN_CORRELATION,
        "later_frame": LATER_FRAME,
        "identical_files": len(identical),
        "near_duplicate_first_frames": len(near),
        "caption_matches": len(captions),
        "question_matches": len(questions),
        "overlap": bool(identical or near or captions),
        "examples": {
            "identical_files": identical[:EXAMPLES],
            "near_duplicate_first_frames": near[:EXAMPLES],
            "caption_matches": captions[:EXAMPLES],
            "question_matches": questions[:EXAMPLES],
        },
    }


def _near_duplicates(test: list[MediaPrint], train: list[MediaPrint], skip: set[str]) -> list[dict]:
    """Test files (not already identical) that are a training file re-encoded: first-frame hash within
    `HASH_CANDIDATE_BITS`, first-frame thumbnails correlated at `MIN_CORRELATION`, later frames matching;
    the first such training file, most correlated first."""
    queries = [p for p in test if p.frame_hash is not None and p.path not in skip]
    keys = [p for p in train if p.frame_hash is not None]
    if not queries or not keys:
        return []
    key_hashes = np.stack([p.frame_hash for p in keys])
    key_thumbnails = np.stack([p.thumbnail for p in keys]).astype(np.float32)
    found = []
    rows = max(1, 4_000_000 // len(keys))  # bound the (rows, keys, 8) xor array
    for first in range(0, len(queries), rows):
        chunk = queries[first : first + rows]
        distances = hamming_distances(np.stack([p.frame_hash for p in chunk]), key_hashes)
        for query, row in zip(chunk, distances):
            candidates = np.flatnonzero(row <= HASH_CANDIDATE_BITS)
            correlations = key_thumbnails[candidates] @ query.thumbnail.astype(np.float32) / query.thumbnail.size
            for index in np.argsort(-correlations):
                if correlations[index] < MIN_CORRELATION:
                    break
                key = keys[int(candidates[index])]
                if later_frames_match(query.path, key.path):
                    found.append(
                        {
                            "test": query.path,
                            "train": key.path,
                            "hash_distance": int(row[candidates[index]]),
                            "correlation": round(float(correlations[index]), 4),
                        }
                    )
                    break
    return found


def summary_line(result: dict) -> str:
    """One line for the terminal."""
    if not result["complete"] and not result["overlap"]:
        return f"contamination: not checked completely ({'; '.join(result['problems'])})"
    verdict = "OVERLAP" if result["overlap"] else "no overlap"
    return (
        f"contamination: {verdict} with {len(result['training_manifests'])} training manifest(s): "
        f"{result['identical_files']} identical files, {result['near_duplicate_first_frames']} near-duplicate "
        f"first frames, {result['caption_matches']} identical captions of {result['test_files']} test files "
        f"({result['question_matches']} repeated questions, reported only)"
    )
