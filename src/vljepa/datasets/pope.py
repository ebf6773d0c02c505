"""POPE (Li et al. 2023), the COCO object-hallucination probe: yes/no questions in three variants.

Files expected under `--root` (the POPE repository's `output/coco/` files and the COCO val2014 images):
  coco_pope_random.json, coco_pope_popular.json, coco_pope_adversarial.json
      (or the same under output/coco/): JSON lines despite the suffix,
      {"question_id", "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard in the image?",
       "label": "yes"}
  val2014/<image>             the COCO 2014 validation images
Manifest: `{"video": val2014/<image>, "question": text, "answer": label, "options": ["yes", "no"],
"type": <variant>}` per line, so accuracy, precision, recall, F1 and the yes-ratio come per variant.
Protocol: the nearer of the Y-encoded "yes" and "no" to the prediction under the question.
"""

from __future__ import annotations

from pathlib import Path

from .common import Imported, field_of, find_file, read_jsonl, resolve_media

VARIANTS = ("random", "popular", "adversarial")
OPTIONS = ["yes", "no"]


def load(root: Path, allow_missing: bool = False) -> Imported:
    items = []
    for variant in VARIANTS:
        name = f"coco_pope_{variant}.json"
        path = find_file(root, name, f"output/coco/{name}")
        for number, entry in enumerate(read_jsonl(path), start=1):
            where = f"{path}:{number}"
            image = root / "val2014" / field_of(entry, "image", where)
            record = {
                "question": field_of(entry, "text", where),
                "answer": str(field_of(entry, "label", where)).strip().lower(),
                "options": OPTIONS,
                "type": variant,
            }
            items.append((record, image if image.is_file() else None, image))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset="pope",
        split="COCO val2014 (random, popular, adversarial)",
        protocol="VQA yes/no per variant: accuracy, precision, recall, F1 ('yes' positive), yes-ratio",
        records=records,
        answer_vocabulary="yes/no",
        missing_media=missing,
    )
