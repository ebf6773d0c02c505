"""COCO Captions and Flickr30k on the Karpathy test splits: text <-> image retrieval (5k and 1k images).

Files expected under `--root` (Karpathy & Fei-Fei's split files, `caption_datasets.zip`, and the images):
  COCO:      dataset_coco.json       {"images": [{"filepath": "val2014", "filename": "COCO_val2014_...jpg",
                                      "split": "test", "sentences": [{"raw": ...}, ...]}, ...]}
             <filepath>/<filename>   the COCO 2014 images (val2014/ for every test image)
  Flickr30k: dataset_flickr30k.json  the same, without "filepath"
             flickr30k-images/<filename>   (or images/<filename>)
Manifest: one record per sentence, `{"video": <image>, "caption": raw}` (about five per image), from the
images whose split is "test".
Protocol: t2v with the sentence's own image the only hit; v2t with any of the image's sentences a hit
(the first-ranked one sets the rank).
"""

from __future__ import annotations

from pathlib import Path

from .common import BenchmarkDataError, Imported, field_of, find_file, first_existing, read_json, resolve_media


def load_named(name: str, root: Path, allow_missing: bool) -> Imported:
    split_file = find_file(root, f"dataset_{name}.json")
    content = read_json(split_file)
    images = content.get("images") if isinstance(content, dict) else None
    if not isinstance(images, list):
        raise BenchmarkDataError(f'{split_file}: no "images" list (not a Karpathy split file?)')
    items = []
    for number, image in enumerate(images):
        where = f"{split_file}: images[{number}]"
        if field_of(image, "split", where) != "test":
            continue
        filename = field_of(image, "filename", where)
        folders = [image["filepath"]] if "filepath" in image else ["flickr30k-images", "images"]
        candidates = [root / folder / filename for folder in folders]
        found = first_existing(candidates)
        for sentence in field_of(image, "sentences", where):
            items.append(({"caption": field_of(sentence, "raw", where).strip()}, found, candidates[0]))
    records, missing = resolve_media(items, allow_missing)
    return Imported(
        dataset=name,
        split="Karpathy test",
        protocol="retrieval: t2v and v2t R@1/5/10, median and mean rank; ~5 captions per image (any is a v2t hit)",
        records=records,
        missing_media=missing,
    )


def load_coco(root: Path, allow_missing: bool = False) -> Imported:
    return load_named("coco", root, allow_missing)


def load_flickr30k(root: Path, allow_missing: bool = False) -> Imported:
    return load_named("flickr30k", root, allow_missing)
