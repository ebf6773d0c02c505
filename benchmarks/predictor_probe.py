"""Does the predictor's output hold what a question asks? A linear probe on a trained model's predicted embeddings.

For each VQA type of the built-in world, the trained model predicts an embedding for every clip's question of
that type; a logistic regression fitted on the training clips' embeddings (their answers as classes) is scored
on the test clips, beside the model's own VQA accuracy (the option whose text embedding is nearest) and the
most frequent answer. The same probe on the caption-mode embedding (no query) says what the query adds.
Read together with the encoder probes (`vljepa probe`, on the frozen X-encoder's tokens):
- the probe near the VQA accuracy: the answer is in the embedding and the answers' embeddings read it out;
- the probe far above it: the embedding holds the answer but not where the answers' embeddings point;
- both near the majority, training clips included, while an encoder probe reads the answer from the tokens:
  the predictor does not extract it (underfitting, not memorising).
Usage: python benchmarks/predictor_probe.py --run runs/demo [--types shape colour exists] [--train-questions 3000]
       [--out benchmarks/results/predictor_probe.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from vljepa.data.video import read_clip
from vljepa.eval.report import machine_description
from vljepa.model import VLJepa
from vljepa.tasks.embed import embed_texts, predict_tokens
from vljepa.tasks.vqa import choose_options

BATCH = 64


def questions(world: Path, split: str, kind: str, limit: int) -> list[dict]:
    records = (json.loads(line) for line in (world / f"{split}.jsonl").open())
    return [r for r in records if r.get("type") == kind][:limit]


@torch.no_grad()
def embeddings(model: VLJepa, world: Path, records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(with the question, caption mode) predicted embeddings, unit length, one row per record."""
    frames = model.config.x_encoder.num_frames
    clips = (
        torch.stack([model.x_encoder.preprocess(read_clip(world / r["video"], frames)) for r in records[i : i + BATCH]])
        for i in range(0, len(records), BATCH)
    )
    tokens = torch.cat([model.x_encoder(batch) for batch in clips])
    asked = predict_tokens(model, tokens, [r["question"] for r in records])
    return asked.numpy(), predict_tokens(model, tokens, [None] * len(records)).numpy()


def vqa_accuracy(model: VLJepa, predicted: np.ndarray, records: list[dict]) -> float:
    """The model's own answers: the option whose text embedding is nearest (`tasks.vqa.choose_options`)."""
    answers = sorted({option for r in records for option in r["options"]})
    embedded = dict(zip(answers, embed_texts(model, answers), strict=True))
    options = [torch.stack([embedded[o] for o in r["options"]]) for r in records]
    chosen = choose_options(torch.from_numpy(predicted), options)
    return float(np.mean([r["options"][c] == r["answer"] for c, r in zip(chosen, records)]))


def probe(train: np.ndarray, train_answers: list[str], test: np.ndarray, test_answers: list[str]) -> dict:
    classifier = LogisticRegression(max_iter=3000).fit(train, train_answers)
    return {"train": classifier.score(train, train_answers), "test": classifier.score(test, test_answers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--types", nargs="+", default=["shape", "colour", "exists"])
    parser.add_argument("--train-questions", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/predictor_probe.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = VLJepa.from_pretrained(args.run / "model" / "final", bf16=False).eval()
    world = args.run / "world"
    results = {
        "command": f"python benchmarks/predictor_probe.py --run {args.run}",
        "machine": machine_description(),
        "model": str(args.run / "model" / "final"),
        "predictor": dataclasses.asdict(model.config.predictor),
        "types": {},
    }
    for kind in args.types:
        train, test = questions(world, "train", kind, args.train_questions), questions(world, "test", kind, 10**9)
        (train_asked, train_captioned), (test_asked, test_captioned) = (
            embeddings(model, world, train),
            embeddings(model, world, test),
        )
        train_answers, test_answers = [r["answer"] for r in train], [r["answer"] for r in test]
        results["types"][kind] = {
            "train questions": len(train),
            "test questions": len(test),
            "vqa accuracy": vqa_accuracy(model, test_asked, test),
            "majority": max(test_answers.count(a) for a in set(test_answers)) / len(test_answers),
            "probe, with the question": probe(train_asked, train_answers, test_asked, test_answers),
            "probe, caption mode": probe(train_captioned, train_answers, test_captioned, test_answers),
        }
        print(kind, json.dumps(results["types"][kind]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
