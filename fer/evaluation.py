"""Evaluation: a model's scores on a split (fer.metrics), its speed, and the plots of both."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer.data import Split
from fer.labels import IMAGE_SIZE
from fer.metrics import EvaluationResult, compute_metrics


def predict_scores(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax scores (N, 7) of ``model`` on uint8 faces (N, 48, 48)."""
    x = images[..., None] if images.ndim == 3 else images
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def evaluate_model(model, split: Split, batch_size: int = 256) -> EvaluationResult:
    return compute_metrics(split.labels, predict_scores(model, split.images, batch_size).argmax(axis=1),
                           split=split.source_name)


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
