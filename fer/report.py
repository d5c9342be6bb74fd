"""A comparison of every model in the zoo: a markdown table, a per-class F1 heat map and the
confusion matrices side by side, all read from the entries' metrics.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.evaluation import draw_confusion_matrix
from fer.labels import EMOTIONS
from fer.export import training_cost
from fer.zoo import ZooEntry


def markdown_table(entries: list[ZooEntry]) -> str:
    """Accuracy, macro F1, per-class recall, size and speed of each entry, best accuracy first."""
    head = ["model", "accuracy", "macro F1", *[f"recall {e}" for e in EMOTIONS], "parameters", "MB",
            "ms / face (CPU)", "TTA", "epochs", "training (h)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in sorted(entries, key=lambda e: e.metrics["test"]["accuracy"], reverse=True):
        m, t = entry.metrics, entry.metrics["test"]
        latency = m.get("latency_ms")
        epochs, seconds = training_cost(m)  # both cycles of a warm restart
        cells = [f"`{entry.name}`", f"**{t['accuracy']:.4f}**", f"{t['macro_f1']:.4f}",
                 *[f"{t['per_class'][e]['recall']:.3f}" for e in EMOTIONS], f"{m['parameters']:,}",
                 f"{m['size_bytes'] / 1e6:.1f}", f"{latency:.1f}" if latency is not None else "-",
                 m.get("tta", "none"), str(epochs), f"{seconds / 3600:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_f1_heatmap(entries: list[ZooEntry], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f1 = np.array([[e.metrics["test"]["per_class"][em]["f1"] for em in EMOTIONS] for e in entries])
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * len(entries)))
    im = ax.imshow(f1, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_yticks(range(len(entries)), [e.name for e in entries])
    for i in range(f1.shape[0]):
        for j in range(f1.shape[1]):
            ax.text(j, i, f"{f1[i, j]:.2f}", ha="center", va="center", color="white" if f1[i, j] < 0.6 else "black")
    ax.set_title("F1 per emotion on the test split")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion_matrices(entries: list[ZooEntry], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(entries), figsize=(4.6 * len(entries), 4.4), squeeze=False)
    for ax, entry in zip(axes[0], entries):
        draw_confusion_matrix(ax, entry.test, fontsize=6, counts=False)
        ax.set_title(f"{entry.name} ({entry.metrics['test']['accuracy']:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(entries: list[ZooEntry], out_dir: Path) -> Path:
    """Write REPORT.md with the table and the two figures into ``out_dir``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_f1_heatmap(entries, out_dir / "f1_per_class.png")
    plot_confusion_matrices(entries, out_dir / "confusion_matrices.png")
    splits = sorted({entry.test.split for entry in entries})
    text = (f"# Model zoo report\n\nFER-2013 {', '.join(splits)} split; regenerate with `python -m fer zoo report`.\n\n"
            + markdown_table(entries) + "\n\n![F1 per class](f1_per_class.png)\n\n"
            "![confusion matrices](confusion_matrices.png)\n")
    (out_dir / "REPORT.md").write_text(text)
    return out_dir / "REPORT.md"
