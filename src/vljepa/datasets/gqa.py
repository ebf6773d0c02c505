"""GQA (Hudson & Manning 2019), balanced test-dev split: open-vocabulary VQA over real images.

Files expected under `--root` (the public `questions1.2.zip` and `images.zip`):
  testdev_balanced_questions.json   {question id: {"imageId", "question", "answer", "types": {...}}, ...}
  images/<imageId>.jpg
Manifest: `{"video": images/<imageId>.jpg, "question", "answer", "type": types.structural}` per question
(`type` is GQA's structural type: verify, query, choose, logical, compare), no `options`.
Answer vocabulary (our choice; the paper does not state its candidate set): every distinct answer of the
split, the candidate set of every question; the nearest Y-encoded answer to the prediction wins.
"""

from __future__ import annotations

from pathlib import Path

from .common import BenchmarkDataError, Imported, field_of, find_file, read_json, resolve_media

QUESTIONS_FILE = "testdev_balanced_questions.json"


def load(root: Path, allow_missing: bool = False) -> Imported:
    path = find_file(root, QUESTIONS_FILE)
    questions = read_json(path)
    if not isinstance(questions, dict):
        raise BenchmarkDataError(f"{path}: expected an object {{question id: question}}")
    items = []
    for qid, entry in questions.items():
        where = f"{path}: question {qid}"
        image = root / "images" / f"{field_of(entry, 'imageId', where)}.jpg"
        record = {"question": field_of(entry, "question", where), "answer": str(field_of(entry, "answer", where))}
        structural = (entry.get("types") or {}).get("structural")
        if structural:
            record["type"] = structural
        items.append((record, image if image.is_file() else None, image))
    records, missing = resolve_media(items, allow_missing)
    answers = {r["answer"] for r in records}
    return Imported(
        dataset="gqa",
        split="testdev balanced",
        protocol="VQA: accuracy (exact answer), per structural type and overall",
        records=records,
        answer_vocabulary=f"every distinct answer of the split ({len(answers)} answers)",
        missing_media=missing,
    )
