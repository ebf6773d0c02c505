"""Tiny copies of the paper's benchmarks, laid out on disk exactly as their public releases are.

Each writer makes a handful of generated videos/images (distinct textured scenes) and the annotation
files in the dataset's own format, and returns what the importer should produce, record by record
(paths relative to the dataset root).
"""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vljepa.data.video import write_video


def scene(seed: int, frames: int = 8, size: int = 64) -> np.ndarray:
    """A distinct textured clip (frames, size, size, 3): a gradient background and a sliding bright block."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    background = np.stack(
        [
            (x * rng.uniform(1, 4) + y * rng.uniform(0, 3)) % 256,
            (y * rng.uniform(1, 4)) % 256,
            np.full_like(x, seed * 37 % 256),
        ],
        -1,
    )
    clip = np.repeat(background[None], frames, 0).astype(np.uint8)
    top, left = int(rng.integers(4, size - 20)), int(rng.integers(4, size - 28))
    for t in range(frames):
        clip[t, top : top + 14, left + 2 * t : left + 2 * t + 14] = 255
    return clip


def write_image(path: Path, frame: np.ndarray) -> None:
    """A png or jpg through PyAV's image2 muxer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "png" if path.suffix == ".png" else "mjpeg"
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream(codec, rate=1)
        stream.height, stream.width = frame.shape[:2]
        stream.pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
        picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=stream.pix_fmt)
        for packet in [*stream.encode(picture), *stream.encode()]:
            container.mux(packet)


def write_webm(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    """A VP9 webm, as Something-Something v2 ships its videos."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_json(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def msrvtt(root: Path) -> list[dict]:
    """MSRVTT_JSFUSION_test.csv (with the leading unnamed index column some copies have) + videos/all/."""
    sentences = ["a man is cooking pasta", "a girl sings on a stage", "cars race on a track", "a dog runs in a park"]
    rows, expected = [], []
    for i, sentence in enumerate(sentences):
        video_id = f"video{7010 + i}"
        write_video(root / "videos" / "all" / f"{video_id}.mp4", scene(100 + i), fps=8)
        rows.append([i, f"ret{i}", f"msr{7010 + i}", video_id, sentence])
        expected.append({"video": f"videos/all/{video_id}.mp4", "caption": sentence})
    with (root / "MSRVTT_JSFUSION_test.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "key", "vid_key", "video_id", "sentence"])
        writer.writerows(rows)
    return expected


KINETICS_ROWS = [  # label, youtube_id, start, end; the first two in the crawler's label folders, the rest flat
    ("air drumming", "-VtLx-mcPds", 0, 10),
    ("abseiling", "0wR5jVB-WPk", 417, 427),
    ("playing guitar", "3caPS4FHFF8", 36, 46),
    ("air drumming", "5Rw5fSuOMiE", 5, 15),
]


def kinetics(root: Path) -> list[dict]:
    """annotations/val.csv (label,youtube_id,time_start,time_end,split) and clips in both common layouts."""
    expected = []
    for i, (label, youtube_id, start, end) in enumerate(KINETICS_ROWS):
        name = f"{youtube_id}_{start:06d}_{end:06d}.mp4"
        relative = f"val/{label.replace(' ', '_')}/{name}" if i < 2 else f"val/{name}"
        write_video(root / relative, scene(200 + i), fps=8)
        expected.append({"video": relative, "label": label})
    (root / "annotations").mkdir(parents=True)
    with (root / "annotations" / "val.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows([[label, yid, start, end, "val"] for label, yid, start, end in KINETICS_ROWS])
        writer.writerow(["zumba", "missingclip1", 3, 13, "val"])  # a class whose clip is gone from YouTube
    return expected


SSV2_LABELS = {
    "Holding something": "0",
    "Pushing something from left to right": "1",
    "Putting something on a surface": "2",
}


def ssv2(root: Path) -> list[dict]:
    """labels/labels.json, labels/validation.json and 20bn-something-something-v2/<id>.webm."""
    entries = [
        {"id": "74225", "label": "pushing cup from left to right", "template": "Pushing [something] from left to right", "placeholders": ["cup"]},
        {"id": "116154", "label": "putting a pen on a surface", "template": "Putting [something] on a surface", "placeholders": ["a pen"]},
        {"id": "198186", "label": "holding box", "template": "Holding [something]", "placeholders": ["box"]},
    ]  # fmt: skip
    for i, entry in enumerate(entries):
        write_webm(root / "20bn-something-something-v2" / f"{entry['id']}.webm", scene(300 + i))
    write_json(root / "labels" / "labels.json", SSV2_LABELS)
    write_json(root / "labels" / "validation.json", entries)
    return [
        {"video": "20bn-something-something-v2/74225.webm", "label": "Pushing something from left to right"},
        {"video": "20bn-something-something-v2/116154.webm", "label": "Putting something on a surface"},
        {"video": "20bn-something-something-v2/198186.webm", "label": "Holding something"},
    ]


POPE_QUESTIONS = {  # variant -> (image number, object, label)
    "random": [(310196, "snowboard", "yes"), (210789, "giraffe", "no")],
    "popular": [(310196, "person", "yes"), (210789, "dining table", "no")],
    "adversarial": [(429109, "car", "yes"), (429109, "truck", "no")],
}


def pope(root: Path) -> list[dict]:
    """coco_pope_{random,popular,adversarial}.json (JSON lines) and val2014/ images."""
    expected, question_id = [], 0
    for number in {n for questions in POPE_QUESTIONS.values() for n, _, _ in questions}:
        write_image(root / "val2014" / f"COCO_val2014_{number:012d}.jpg", scene(number % 97)[0])
    for variant, questions in POPE_QUESTIONS.items():
        lines = []
        for number, thing, label in questions:
            question_id += 1
            image, text = f"COCO_val2014_{number:012d}.jpg", f"Is there a {thing} in the image?"
            lines.append(json.dumps({"question_id": question_id, "image": image, "text": text, "label": label}))
            expected.append(
                {
                    "video": f"val2014/{image}",
                    "question": text,
                    "answer": label,
                    "options": ["yes", "no"],
                    "type": variant,
                }
            )
        (root / f"coco_pope_{variant}.json").write_text("\n".join(lines) + "\n")
    return expected


def karpathy_coco(root: Path) -> list[dict]:
    """dataset_coco.json (Karpathy split; one train image that must be left out) and val2014/ images."""
    images, expected = [], []
    for i, split in enumerate(["test", "train", "test"]):
        filename = f"COCO_val2014_{391895 + i:012d}.jpg"
        write_image(root / "val2014" / filename, scene(400 + i)[0])
        sentences = [f"image {i} sentence {k} " for k in range(3)]
        images.append(
            {"filepath": "val2014", "filename": filename, "split": split, "sentences": [{"raw": s, "tokens": s.split()} for s in sentences]}
        )  # fmt: skip
        if split == "test":
            expected += [{"video": f"val2014/{filename}", "caption": s.strip()} for s in sentences]
    write_json(root / "dataset_coco.json", {"images": images, "dataset": "coco"})
    return expected


def karpathy_flickr30k(root: Path) -> list[dict]:
    """dataset_flickr30k.json (no "filepath": the images sit in flickr30k-images/)."""
    images = [
        {"filename": "1000092795.jpg", "split": "test", "sentences": [{"raw": "Two young guys with shaggy hair."}]},
        {"filename": "10002456.jpg", "split": "val", "sentences": [{"raw": "Several men in hard hats."}]},
    ]
    for i, image in enumerate(images):
        write_image(root / "flickr30k-images" / image["filename"], scene(450 + i)[0])
    write_json(root / "dataset_flickr30k.json", {"images": images, "dataset": "flickr30k"})
    return [{"video": "flickr30k-images/1000092795.jpg", "caption": "Two young guys with shaggy hair."}]


def gqa(root: Path) -> list[dict]:
    questions = {
        "20968379": {"imageId": "n288870", "question": "Is the sky blue?", "answer": "yes", "types": {"structural": "verify"}},
        "201307251": {"imageId": "n15966", "question": "What is the man holding?", "answer": "racket", "types": {"structural": "query"}},
    }  # fmt: skip
    for i, entry in enumerate(questions.values()):
        write_image(root / "images" / f"{entry['imageId']}.jpg", scene(500 + i)[0])
    write_json(root / "testdev_balanced_questions.json", questions)
    return [
        {"video": "images/n288870.jpg", "question": "Is the sky blue?", "answer": "yes", "type": "verify"},
        {"video": "images/n15966.jpg", "question": "What is the man holding?", "answer": "racket", "type": "query"},
    ]


def tallyqa(root: Path) -> list[dict]:
    entries = [
        {"image": "VG_100K_2/2410.jpg", "question": "How many dogs are there?", "answer": 2, "issimple": True},
        {"image": "val2014/COCO_val2014_000000000042.jpg", "question": "How many people wear hats?", "answer": 0, "issimple": False},
    ]  # fmt: skip
    for i, entry in enumerate(entries):
        write_image(root / entry["image"], scene(600 + i)[0])
    write_json(root / "test.json", entries)
    options = ["0", "1", "2"]
    return [
        {"video": "VG_100K_2/2410.jpg", "question": "How many dogs are there?", "answer": "2", "type": "simple", "options": options},
        {"video": "val2014/COCO_val2014_000000000042.jpg", "question": "How many people wear hats?", "answer": "0", "type": "complex", "options": options},
    ]  # fmt: skip


def activitynet(root: Path) -> list[dict]:
    annotations = {
        "v_QOlSCBRmfWY": {"duration": 82.7, "timestamps": [[0.8, 19.9], [17.4, 60.8]], "sentences": ["A woman dances. ", " She twirls."]},
        "v_ehGHCYKzyZ8": {"duration": 61.7, "timestamps": [[0.0, 61.7]], "sentences": ["A man plays drums."]},
    }  # fmt: skip
    write_video(root / "videos" / "v_QOlSCBRmfWY.mp4", scene(700), fps=8)
    write_video(root / "videos" / "ehGHCYKzyZ8.mkv", scene(701), fps=8)  # a copy without the v_ prefix
    write_json(root / "val_1.json", annotations)
    return [
        {"video": "videos/v_QOlSCBRmfWY.mp4", "caption": "A woman dances. She twirls."},
        {"video": "videos/ehGHCYKzyZ8.mkv", "caption": "A man plays drums."},
    ]


def didemo(root: Path) -> list[dict]:
    entries = [
        {"video": "10015567@N08_3655084291_d8b58466fa.mov", "description": "a baby crawls", "times": [[0, 1]]},
        {"video": "10051547@N05_2596264133_0a1ec7d84b.avi", "description": "a bird flies", "times": [[2, 3]]},
        {"video": "10015567@N08_3655084291_d8b58466fa.mov", "description": "the baby stops", "times": [[4, 4]]},
    ]
    write_video(root / "videos" / "10015567@N08_3655084291_d8b58466fa.mov.mp4", scene(800), fps=8)
    write_video(root / "videos" / "10051547@N05_2596264133_0a1ec7d84b.mp4", scene(801), fps=8)
    write_json(root / "test_data.json", entries)
    return [
        {"video": "videos/10015567@N08_3655084291_d8b58466fa.mov.mp4", "caption": "a baby crawls the baby stops"},
        {"video": "videos/10051547@N05_2596264133_0a1ec7d84b.mp4", "caption": "a bird flies"},
    ]


def msvd(root: Path) -> list[dict]:
    """AllVideoDescriptions.txt (with its comment header), test_list.txt and YouTubeClips/<id>.avi."""
    lines = [
        "# Microsoft Research Video Description Corpus",
        "# <video id> <description>",
        "-4wsuPCjDBc_5_15 a squirrel is eating a peanut",
        "-4wsuPCjDBc_5_15 A squirrel eats.",
        "-7KMZQEsJW4_205_208 a man plays a guitar",
        "00jrXRMlZOY_0_10 a train video not in the test list",
    ]
    (root / "YouTubeClips").mkdir(parents=True)
    (root / "AllVideoDescriptions.txt").write_text("\n".join(lines) + "\n")
    (root / "test_list.txt").write_text("-4wsuPCjDBc_5_15\n-7KMZQEsJW4_205_208\n")
    for i, video in enumerate(["-4wsuPCjDBc_5_15", "-7KMZQEsJW4_205_208"]):
        write_video(root / "YouTubeClips" / f"{video}.avi", scene(900 + i), fps=8)
    return [
        {"video": "YouTubeClips/-4wsuPCjDBc_5_15.avi", "caption": "a squirrel is eating a peanut"},
        {"video": "YouTubeClips/-4wsuPCjDBc_5_15.avi", "caption": "A squirrel eats."},
        {"video": "YouTubeClips/-7KMZQEsJW4_205_208.avi", "caption": "a man plays a guitar"},
    ]
