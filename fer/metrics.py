"""Scores of a model on a split: accuracy, per-class precision / recall / F1 and the confusion matrix.

Read by both flows: evaluation computes results, the zoo reader and the app show the ones an entry
recorded. No Keras here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from fer.labels import EMOTIONS, NUM_CLASSES


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
        lines.append(f"{'accuracy':>10s} {'':9s} {'':9s} {self.accuracy:9.4f} {self.n:9d}")
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
