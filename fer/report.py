"""A comparison of every model in the zoo: a markdown table, a per-class F1 heat map, the confusion
matrices side by side, and how calibrated each model's scores are (a table and one figure of reliability
diagrams), all read from the entries' metrics.json and the manifest (the ensemble's calibration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer.calibration import NUM_BINS, TARGET_ACCURACY, THRESHOLD_STEP, Calibration
from fer.ensemble import ENSEMBLE
from fer.evaluation import draw_confusion_matrix, plot_reliability
from fer.export import training_cost
from fer.labels import EMOTIONS
from fer.zoo import ZooEntry

RELIABILITY_FIGURE = "reliability.png"


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


def _calibrations(entries: list[ZooEntry], ensemble: Calibration | None) -> dict[str, Calibration | None]:
    ranked = sorted(entries, key=lambda e: e.metrics["test"]["accuracy"], reverse=True)
    return {**{e.name: e.calibration for e in ranked}, **({ENSEMBLE: ensemble} if ensemble else {})}


def calibration_table(entries: list[ZooEntry], ensemble: Calibration | None = None) -> str:
    """Per model (and the ensemble, when calibrated), on the test split: the temperature, accuracy, raw and
    calibrated ECE, NLL and Brier score, and the uncertain threshold with its coverage and accuracy."""
    head = ["model", "T", "accuracy", "ECE raw", "ECE calibrated", "NLL raw", "NLL calibrated", "Brier raw",
            "Brier calibrated", "uncertain below", "faces above", "accuracy above"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, c in _calibrations(entries, ensemble).items():
        if c is None or c.test is None:
            lines.append(f"| `{name}` | not calibrated: `python -m fer zoo calibrate {name} --data PATH` |"
                         + " |" * (len(head) - 2))
            continue
        t, s = c.test, c.test.selective
        temperature = "members'" if name == ENSEMBLE else f"{c.temperature:.4f}"
        cells = [f"`{name}`", temperature, f"{t.calibrated.accuracy:.4f}", f"{t.raw.ece:.4f}",
                 f"**{t.calibrated.ece:.4f}**", f"{t.raw.nll:.4f}", f"{t.calibrated.nll:.4f}", f"{t.raw.brier:.4f}",
                 f"{t.calibrated.brier:.4f}", f"{c.uncertain_threshold:.2f}", f"{s.coverage:.1%}", f"{s.accuracy:.1%}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_calibration(entries: list[ZooEntry], ensemble: Calibration | None, path: Path) -> bool:
    """One figure, a reliability diagram (test split, raw and calibrated) per calibrated model; False when
    no model is calibrated (no figure)."""
    panels = {name: c.test for name, c in _calibrations(entries, ensemble).items() if c is not None and c.test}
    if panels:
        plot_reliability(panels, path)
    return bool(panels)


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


CALIBRATION_NOTE = (
    "Scores are calibrated by temperature scaling (`softmax(log p / T)`, T fitted per model on its validation "
    f"slice; the ensemble averages calibrated members). ECE: expected calibration error, top label, {NUM_BINS} "
    "equal-width bins; NLL: mean negative log-likelihood; Brier: squared error summed over the seven classes, "
    "mean over faces. A face is *uncertain* when its top calibrated score is below the model's threshold: the "
    f"lowest (in steps of {THRESHOLD_STEP}) at which the validation faces at or above it are at least "
    f"{TARGET_ACCURACY:.0%} correct; *faces above* and *accuracy above* are its effect on the test split. Refit "
    "with `python -m fer zoo calibrate all --data PATH`.")


def write_report(entries: list[ZooEntry], out_dir: Path, ensemble: Calibration | None = None) -> Path:
    """Write REPORT.md with the tables and the figures into ``out_dir``; returns its path. ``ensemble``: the
    ensemble's calibration, if it has one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_f1_heatmap(entries, out_dir / "f1_per_class.png")
    plot_confusion_matrices(entries, out_dir / "confusion_matrices.png")
    drawn = plot_calibration(entries, ensemble, out_dir / RELIABILITY_FIGURE)
    splits = sorted({entry.test.split for entry in entries})
    text = (f"# Model zoo report\n\nFER-2013 {', '.join(splits)} split; regenerate with `python -m fer zoo report`.\n\n"
            + markdown_table(entries) + "\n\n![F1 per class](f1_per_class.png)\n\n"
            "![confusion matrices](confusion_matrices.png)\n\n## Calibration\n\n" + CALIBRATION_NOTE + "\n\n"
            + calibration_table(entries, ensemble) + "\n"
            + (f"\n![reliability diagrams: accuracy against confidence, raw and calibrated]({RELIABILITY_FIGURE})\n"
               if drawn else ""))
    (out_dir / "REPORT.md").write_text(text)
    return out_dir / "REPORT.md"
