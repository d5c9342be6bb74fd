"""Scores of a model on a split: accuracy, per-class precision / recall / F1 and the confusion matrix.

Read by both flows: evaluation computes results, the zoo reader and the app show the ones an entry
recorded. No Keras here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from fer.labels import EMOTIONS, NUM_CLASSES


CONFIDENCE = 0.95
"""The level of the accuracy intervals the reports give."""


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of ``correct`` out of ``n`` faces: the accuracies p at which
    ``correct / n`` is within z standard errors sqrt(p (1 - p) / n) of p. Unlike p +- z se it stays inside
    [0, 1] and holds its level near 0 and 1 (Brown, Cai & DasGupta, 2001)."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = correct / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class PairedComparison:
    """Two models scored on the same faces: how many only one of them gets right, and the exact McNemar test's
    two-sided p-value of the hypothesis that either is as likely to be the one right (McNemar, 1947)."""

    only_first: int
    only_second: int
    p_value: float

    @classmethod
    def of(cls, first_correct, second_correct) -> "PairedComparison":
        from scipy.stats import binomtest

        first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
        only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
        discordant = only_first + only_second
        p = binomtest(min(only_first, only_second), discordant, 0.5).pvalue if discordant else 1.0
        return cls(only_first, only_second, float(p))


@dataclass
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvaluationResult:
    """Scores of one model on one split; ``to_dict`` is the ``evaluate --json`` contract."""

    accuracy: float
    macro_f1: float
    n: int
    labels: list[str]
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]]
    split: str = "test"  # which faces: "PublicTest", "PrivateTest", "test", "validation" ...

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def correct(self) -> int:
        return int(np.trace(np.asarray(self.confusion_matrix)))

    def accuracy_interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """Where the accuracy on faces like these lies, at ``confidence``, given this split's size (Wilson)."""
        return wilson_interval(self.correct, self.n, confidence)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluationResult":
        d = dict(d)
        d["per_class"] = {k: ClassMetrics(**v) for k, v in d["per_class"].items()}
        return cls(**d)

    def report(self) -> str:
        """The classification report and confusion matrix as text."""
        lines = [f"{'':>10s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>9s}"]
        for e in self.labels:
            m = self.per_class[e]
            lines.append(f"{e:>10s} {m.precision:9.4f} {m.recall:9.4f} {m.f1:9.4f} {m.support:9d}")
        lo, hi = self.accuracy_interval()
        lines.append(f"{'accuracy':>10s} {'':9s} {'':9s} {self.accuracy:9.4f} {self.n:9d}"
                     f"   {CONFIDENCE:.0%} interval {lo:.4f}-{hi:.4f}")
        lines.append(f"{'macro f1':>10s} {'':9s} {'':9s} {self.macro_f1:9.4f} {self.n:9d}")
        lines.append("")
        lines.append("confusion matrix (rows: true, columns: predicted)")
        lines.append(" " * 10 + " ".join(f"{e[:8]:>8s}" for e in self.labels))
        for e, row in zip(self.labels, self.confusion_matrix):
            lines.append(f"{e:>10s}" + " ".join(f"{v:8d}" for v in row))
        return "\n".join(lines)


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, split: str = "test") -> EvaluationResult:
    """Metrics of predicted label ids against true ones (scikit-learn's definitions)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return EvaluationResult(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        n=int(len(y_true)),
        labels=list(EMOTIONS),
        per_class={e: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
                   for i, e in enumerate(EMOTIONS)},
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        split=split,
    )
