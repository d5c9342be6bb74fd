"""Evaluation: a model's scores on a split (fer.metrics), how well calibrated they are (fer.calibration),
its speed, and the plots of all three."""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.calibration import Calibration, SplitCalibration, apply_temperature
from fer.data import Split
from fer.ensemble import ENSEMBLE, combine
from fer.labels import IMAGE_SIZE
from fer.metrics import EvaluationResult, compute_metrics

log = logging.getLogger(__name__)


def predict_scores(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax scores (N, 7) of ``model`` on uint8 faces (N, 48, 48)."""
    x = images[..., None] if images.ndim == 3 else images
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def evaluate_scores(probs: np.ndarray, split: Split) -> EvaluationResult:
    """The metrics of probabilities (N, 7) scored on ``split``."""
    return compute_metrics(split.labels, np.asarray(probs).argmax(axis=1), split=split.source_name)


def evaluate_model(model, split: Split, batch_size: int = 256) -> EvaluationResult:
    return evaluate_scores(predict_scores(model, split.images, batch_size), split)


@dataclass
class CalibratedScores:
    """A model's raw and calibrated probabilities on some faces: ``temperature`` is the one applied (per member,
    and its own under ``ensemble``, for the ensemble; 1 where none was fitted), ``fitted`` whether every temperature was fitted, ``calibration``
    the record whose uncertain threshold applies (None: none was chosen)."""

    raw: np.ndarray
    calibrated: np.ndarray
    temperature: float | dict[str, float]
    calibration: Calibration | None
    fitted: bool

    def report(self, labels: np.ndarray, split: str) -> dict:
        """The ``calibration`` block of ``evaluate --json``: temperature, threshold, raw vs calibrated quality."""
        threshold = self.calibration.uncertain_threshold if self.calibration else None
        measured = SplitCalibration.measure(self.raw, self.calibrated, labels, split, threshold)
        return {"temperature": self.temperature, "fitted": self.fitted, "uncertain_threshold": threshold,
                **measured.to_dict()}


def score_calibrated(model: str, images: np.ndarray, zoo_dir: Path | None = None) -> CalibratedScores:
    """Raw and calibrated probabilities of a zoo model, an entry folder, a model file or ``ensemble`` (the mean of
    its members' raw probabilities, and fer.ensemble.combine of their calibrated ones with its own temperature)
    on uint8 faces (N, 48, 48). One forward pass per model: the temperature is applied to the raw scores
    (fer.calibration.apply_temperature, the transform fer.zoo.load_model builds in)."""
    from fer.zoo import ensemble_members, load_model, read_calibration

    if model == ENSEMBLE and not Path(model).exists():
        names = ensemble_members(zoo_dir)
        members = [score_calibrated(name, images, zoo_dir) for name in names]
        ensemble = read_calibration(ENSEMBLE, zoo_dir)
        temperature = ensemble.temperature if ensemble else 1.0
        return CalibratedScores(np.asarray(combine(np.stack([m.raw for m in members]))),
                                np.asarray(combine(np.stack([m.calibrated for m in members]), temperature)),
                                {**{name: m.temperature for name, m in zip(names, members)}, ENSEMBLE: temperature},
                                ensemble, ensemble is not None and all(m.fitted for m in members))
    calibration = read_calibration(model, zoo_dir)
    started = time.perf_counter()
    raw = predict_scores(load_model(model, zoo_dir, calibrated=False), images)
    log.info("Scored %d faces with %s in %.0f s", len(images), model, time.perf_counter() - started)
    if calibration is None:
        log.warning("%s has no fitted temperature: its scores are used as they are (T = 1).", model)
        return CalibratedScores(raw, raw, 1.0, None, False)
    return CalibratedScores(raw, apply_temperature(raw, calibration.temperature), calibration.temperature,
                            calibration, True)


def cpu_latency_ms(model, runs: int = 50) -> float:
    """Median milliseconds to score one face (batch of one, inside a traced function)."""
    import time

    import tensorflow as tf

    from fer.models import traced_inference

    infer = traced_inference(model)
    x = tf.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1))
    for _ in range(3):
        infer(x)  # trace and warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        infer(x).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def draw_confusion_matrix(ax, result: EvaluationResult, fontsize: int = 7, counts: bool = True):
    """Draw the row-normalised confusion matrix (recall on the diagonal) on a matplotlib axis."""
    cm = np.asarray(result.confusion_matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(result.labels)), result.labels, rotation=45, ha="right")
    ax.set_yticks(range(len(result.labels)), result.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(result.labels)):
        for j in range(len(result.labels)):
            text = f"{norm[i, j]:.2f}\n{int(cm[i, j])}" if counts else f"{norm[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if norm[i, j] > 0.5 else "black")
    return image


def plot_confusion_matrix(result: EvaluationResult, path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = draw_confusion_matrix(ax, result)
    ax.set_title(title or f"accuracy {result.accuracy:.3f}, macro F1 {result.macro_f1:.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="recall (row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history_csv: Path, path: Path) -> None:
    """Loss and accuracy per epoch (train and validation), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [float(r[metric]) for r in rows], label="train")
        if rows and f"val_{metric}" in rows[0]:
            ax.plot(epochs, [float(r[f"val_{metric}"]) for r in rows], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_reliability(ax, measured: SplitCalibration, title: str = "") -> None:
    """A reliability diagram on a matplotlib axis: accuracy against mean confidence per bin, raw and
    calibrated, with the diagonal a perfectly calibrated model would follow."""
    from fer.calibration import NUM_BINS

    width = 1 / NUM_BINS
    centres = (np.arange(NUM_BINS) + 0.5) * width
    cal, raw = measured.calibrated.bins, measured.raw.bins
    filled = np.asarray(cal.count) > 0
    ax.bar(centres[filled], np.asarray(cal.accuracy)[filled], width * 0.9, color="tab:blue", alpha=0.55,
           label=f"calibrated (ECE {measured.calibrated.ece:.3f})")
    used = np.asarray(raw.count) > 0
    ax.plot(np.asarray(raw.confidence)[used], np.asarray(raw.accuracy)[used], "o-", color="tab:red", ms=3,
            lw=1.2, label=f"raw (ECE {measured.raw.ece:.3f})")
    ax.plot(np.asarray(cal.confidence)[filled], np.asarray(cal.accuracy)[filled], "s", color="tab:blue", ms=3)
    ax.plot([0, 1], [0, 1], "--", color="gray", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("top probability (mean per bin)")
    ax.set_ylabel("accuracy")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or f"{measured.split}, {measured.n} faces", fontsize=9)


def plot_reliability(panels: dict[str, SplitCalibration], path: Path) -> None:
    """One reliability diagram per model (by name), side by side in one figure, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 4.0), squeeze=False)
    for ax, (name, measured) in zip(axes[0], panels.items()):
        draw_reliability(ax, measured, f"{name}: {measured.split}, {measured.n} faces")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
