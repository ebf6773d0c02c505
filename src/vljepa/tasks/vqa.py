"""Discriminative VQA: the nearest Y-encoded option to the prediction under the question.

Accuracy is read beside a question-only prior (the most common training answer to the same
question string, among the options): yes/no questions can look solved while the image is ignored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def choose_options(predicted: torch.Tensor, option_embeddings: list[torch.Tensor]) -> list[int]:
    """Index of the nearest option for each row; option sets may differ in size."""
    return [int((options @ row).argmax()) for row, options in zip(predicted, option_embeddings)]


class QuestionPrior:
    """The most common training answer per question string (falling back to the most common overall)."""

    def __init__(self, questions: list[str], answers: list[str]):
        self.by_question: dict[str, Counter] = defaultdict(Counter)
        for question, answer in zip(questions, answers):
            self.by_question[question][answer] += 1
        self.overall = Counter(answers)

    def expected_accuracy(self, question: str, options: list[str], answer: str) -> float:
        """1 or 0 if the prior picks an option, else the chance of a uniform guess."""
        for counter in (self.by_question.get(question, Counter()), self.overall):
            ranked = [a for a, _ in counter.most_common() if a in options]
            if ranked:
                return float(ranked[0] == answer)
        return 1.0 / len(options)


def yes_no_metrics(chosen: list[str], answers: list[str], positive: str = "yes") -> dict[str, float]:
    """POPE's figures for yes/no questions, `positive` ("yes") the positive class: precision, recall, F1
    and the yes-ratio (the share of "yes" predictions); precision (or F1) is 0 when nothing is positive."""
    predicted = [c == positive for c in chosen]
    truth = [a == positive for a in answers]
    true_positive = sum(p and t for p, t in zip(predicted, truth))
    precision = true_positive / sum(predicted) if any(predicted) else 0.0
    recall = true_positive / sum(truth) if any(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "yes_ratio": sum(predicted) / len(predicted)}
