"""TallyQA (Acharya et al. 2019), test split: counting questions, simple and complex.

Files expected under `--root` (the public `tallyqa.zip` and the Visual Genome and COCO images it uses):
  test.json      [{"image": "VG_100K_2/2410.jpg" | "val2014/COCO_val2014_...jpg", "question", "answer": 2,
                   "issimple": true, ...}, ...]
  <image>        each image at the path the record gives, under the root
Manifest: `{"video": <image>, "question", "answer": "<count>", "options": ["0", ..., "<max>"],
"type": "simple" | "complex"}`.
Answer vocabulary (our choice; the paper does not state it): the counts 0 .. the largest answer of the
split, written as numerals, for every question; the nearest Y-encoded count wins. Accuracy is reported
for simple and complex questions apart and overall.
"""

from __future__ import annotations

from pathlib import Path

from .common import BenchmarkDataError, Imported, field_of, find_file, read_json, resolve_media


def load(root: Path, allow_missing: bool = False) -> Imported:
    path = find_file(root, "test.json")
    entries = read_json(path)
    if not isinstance(entries, list):
        raise BenchmarkDataError(f"{path}: expected a list of questions")
    items = []
    for number, entry in enumerate(entries):
        where = f"{path}: entry {number}"
        answer = field_of(entry, "answer", where)
        if isinstance(answer, bool) or not isinstance(answer, int) or answer < 0:
            raise BenchmarkDataError(f'{where}: "answer" must be a count (an integer >= 0), got {answer!r}')
        image = root / field_of(entry, "image", where)
        record = {
            "question": field_of(entry, "question", where),
            "answer": str(answer),
            "type": "simple" if field_of(entry, "issimple", where) else "complex",
        }
        items.append((record, image if image.is_file() else None, image))
    records, missing = resolve_media(items, allow_missing)
    options = [str(n) for n in range(max((int(r["answer"]) for r in records), default=0) + 1)]
    for record in records:
        record["options"] = options
    return Imported(
        dataset="tallyqa",
        split="test",
        protocol="VQA counting: accuracy for simple and complex questions and overall",
        records=records,
        answer_vocabulary=f"the counts 0-{len(options) - 1} as numerals ({len(options)} answers)",
        missing_media=missing,
    )
