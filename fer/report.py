"""A comparison of every model in the zoo: a markdown table, a per-class F1 heat map, the confusion
matrices side by side, and how calibrated each model's scores are (a table and one figure of reliability
diagrams), all read from the entries' metrics.json and the manifest (the ensemble's calibration)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.calibration import NUM_BINS, TARGET_ACCURACY, THRESHOLD_STEP, Calibration
from fer.ensemble import ENSEMBLE
from fer.errors import ZooError
from fer.evaluation import draw_confusion_matrix, plot_reliability
from fer.labels import EMOTIONS
from fer.metrics import CONFIDENCE, PairedComparison, compute_metrics
from fer.zoo import DEFAULT_HARDWARE, ZooEntry, decode_predictions, earlier_cycles, training_cost

log = logging.getLogger(__name__)

RELIABILITY_FIGURE = "reliability.png"
COST_FIGURE = "accuracy_per_hour.png"
COST_MILESTONES = (0.60, 0.65)
"""The cost table gives the training hours each model took to first reach these validation accuracies."""


def markdown_table(entries: list[ZooEntry]) -> str:
    """Accuracy, macro F1, per-class recall, size and speed of each entry, best accuracy first."""
    head = ["model", "accuracy", f"{CONFIDENCE:.0%} interval", "macro F1", *[f"recall {e}" for e in EMOTIONS],
            "parameters", "MB", "ms / face (CPU)", "TTA", "epochs", "training (h)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in sorted(entries, key=lambda e: e.metrics["test"]["accuracy"], reverse=True):
        m, t = entry.metrics, entry.metrics["test"]
        latency = m.get("latency_ms")
        epochs, seconds = training_cost(m)  # both cycles of a warm restart
        lo, hi = entry.test.accuracy_interval()
        cells = [f"`{entry.name}`", f"**{t['accuracy']:.4f}**", f"{lo:.4f}-{hi:.4f}", f"{t['macro_f1']:.4f}",
                 *[f"{t['per_class'][e]['recall']:.3f}" for e in EMOTIONS], f"{m['parameters']:,}",
                 f"{m['size_bytes'] / 1e6:.1f}", f"{latency:.1f}" if latency is not None else "-",
                 m.get("tta", "none"), str(epochs), f"{seconds / 3600:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _recorded_on(labels: np.ndarray, predictions: np.ndarray | None, recorded: dict | None) -> bool:
    """Whether ``predictions`` were made on the faces ``labels`` belong to: they give exactly the test scores
    recorded beside them (``recorded``: a confusion matrix, or an accuracy where none is kept). PublicTest and
    PrivateTest have the same size, so the length alone would not tell."""
    if predictions is None or recorded is None or len(predictions) != len(labels):
        return False
    if "confusion_matrix" in recorded:
        return compute_metrics(labels, predictions).confusion_matrix == recorded["confusion_matrix"]
    return abs(float((predictions == labels).mean()) - recorded["accuracy"]) < 0.5 / len(labels)


def recorded_test_predictions(entries: list[ZooEntry], labels: np.ndarray, ensemble: dict | None = None,
                              warn: bool = True) -> list[tuple[str, np.ndarray]]:
    """(name, predicted classes) of every model whose recorded test predictions were made on the faces of
    ``labels`` (a test split's true classes, in split order), best accuracy first. ``ensemble``: the manifest's
    ensemble record (fer.zoo.ensemble_record), whose predictions calibrate ensemble recorded. A model without
    recorded predictions, or with predictions on other faces, is left out (with a warning if ``warn``)."""
    models = [(e.name, e.test_predictions, e.metrics["test"]) for e in entries]
    if ensemble and ensemble.get("test_predictions"):
        test = ensemble["calibration"].test
        models.append((ENSEMBLE, decode_predictions(ensemble["test_predictions"]),
                       {"accuracy": test.calibrated.accuracy} if test else None))
    kept = [(name, predicted) for name, predicted, recorded in models if _recorded_on(labels, predicted, recorded)]
    if warn and (left_out := [name for name, *_ in models if name not in dict(kept)]):
        log.warning("Left out of the paired comparison (no test predictions recorded on these faces): %s",
                    ", ".join(left_out))
    return sorted(kept, key=lambda m: -(m[1] == labels).mean())


def paired_table(entries: list[ZooEntry], labels: np.ndarray, ensemble: dict | None = None) -> str:
    """Every pair of models whose recorded test predictions were made on the faces of ``labels``
    (recorded_test_predictions): the faces only one of the two gets right and the exact McNemar p-value, best
    accuracy first."""
    ranked = recorded_test_predictions(entries, labels, ensemble)
    lines = ["| model | against | accuracy difference | faces only the model gets right | faces only the other gets "
             "right | p (exact McNemar) |", "|" + "---|" * 6]
    for i, (first, first_predicted) in enumerate(ranked):
        for second, second_predicted in ranked[i + 1:]:
            c = PairedComparison.of(first_predicted == labels, second_predicted == labels)
            difference = (c.only_first - c.only_second) / len(labels)
            lines.append(f"| `{first}` | `{second}` | {difference:+.4f} | {c.only_first} | {c.only_second} | "
                         f"{c.p_value:.2g} |")
    return "\n".join(lines)


def overlap_table(entries: list[ZooEntry], labels: np.ndarray, seen: np.ndarray, ensemble: dict | None = None) -> str:
    """Each model's test accuracy on the faces that are pixel for pixel also training faces (``seen``, a mask over
    the test split: fer.data.seen_in) and on the others, from the recorded test predictions; best first."""
    lines = ["| model | test faces | accuracy | faces also in the training split | accuracy on them | other faces | "
             "accuracy on the others |", "|" + "---|" * 7]
    for name, predicted in recorded_test_predictions(entries, labels, ensemble, warn=False):
        right = predicted == labels
        on = [f"{right[part].mean():.4f}" if part.any() else "-" for part in (seen, ~seen)]
        lines.append(f"| `{name}` | {len(labels)} | {right.mean():.4f} | {int(seen.sum())} | {on[0]} | "
                     f"{int((~seen).sum())} | {on[1]} |")
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
        temperature = f"members', then {c.temperature:.4f}" if name == ENSEMBLE else f"{c.temperature:.4f}"
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


@dataclass
class TrainingCurve:
    """Validation accuracy after each epoch of an entry's last training cycle, against the training hours
    spent so far (``start_hours``: earlier cycles of a warm restart, whose epochs history.csv does not hold)."""

    name: str
    hours: np.ndarray
    val_accuracy: np.ndarray
    start_hours: float

    @classmethod
    def of(cls, entry: ZooEntry) -> TrainingCurve | None:
        from fer.training import read_history

        rows = [r for r in read_history(entry.path / "history.csv") if r.get("val_accuracy") and r.get("epoch_seconds")]
        if not rows:
            return None
        start = sum(c.get("train_seconds", 0) for c in earlier_cycles(entry.metrics)) / 3600
        hours = start + np.cumsum([float(r["epoch_seconds"]) for r in rows]) / 3600
        return cls(entry.name, hours, np.array([float(r["val_accuracy"]) for r in rows]), start)

    def hours_to(self, accuracy: float) -> float | None:
        """Training hours until validation accuracy first reached ``accuracy`` (None: never in this cycle, or
        already before it)."""
        reached = np.flatnonzero(self.val_accuracy >= accuracy)
        if not len(reached) or (self.start_hours and reached[0] == 0):
            return None
        return float(self.hours[reached[0]])


def cost_table(entries: list[ZooEntry]) -> str:
    """Per entry: its recipe's cost and what it bought on the validation slice (the test split plays no part)."""
    head = ["model", "trained on", "epochs", "hours", "best validation accuracy",
            *[f"hours to {a:.2f}" for a in COST_MILESTONES], "best validation accuracy in the first hour"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in entries:
        curve = TrainingCurve.of(entry)
        if curve is None:
            continue
        epochs, seconds = training_cost(entry.metrics)
        first_hour = curve.val_accuracy[curve.hours <= 1.0] if not curve.start_hours else []
        rate = f"{first_hour.max():.4f}" if len(first_hour) else "-"
        milestones = [curve.hours_to(a) for a in COST_MILESTONES]
        cells = [f"`{entry.name}`", entry.metrics.get("trained_on", DEFAULT_HARDWARE), str(epochs), f"{seconds / 3600:.2f}",
                 f"{curve.val_accuracy.max():.4f}", *[f"{h:.2f}" if h is not None else "-" for h in milestones],
                 rate]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_training_cost(entries: list[ZooEntry], path: Path) -> bool:
    """Validation accuracy against training hours, one line per entry (False: no entry has a history)."""
    curves = [c for c in map(TrainingCurve.of, entries) if c is not None]
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for curve in curves:
        label = curve.name + (f" (cycle from {curve.start_hours:.1f} h)" if curve.start_hours else "")
        ax.plot(curve.hours, curve.val_accuracy, marker=".", label=label)
    ax.set_xlabel("training hours")
    ax.set_ylabel("validation accuracy")
    ax.set_title("What training time buys (validation slice, each epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


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
    f"slice; the ensemble averages calibrated members, then applies a T of its own, fitted on that mean). ECE: expected calibration error, top label, {NUM_BINS} "
    "equal-width bins; NLL: mean negative log-likelihood; Brier: squared error summed over the seven classes, "
    "mean over faces. A face is *uncertain* when its top calibrated score is below the model's threshold: the "
    f"lowest (in steps of {THRESHOLD_STEP}) at which the validation faces at or above it are at least "
    f"{TARGET_ACCURACY:.0%} correct; *faces above* and *accuracy above* are its effect on the test split. Refit "
    "with `python -m fer zoo calibrate all --data PATH`.")


COST_NOTE = (
    "What each recipe bought per hour of training, read from each entry's history.csv: validation accuracy "
    "after each epoch (one view, no test-time augmentation; the test split plays no part). "
    "A warm restart's history holds its last cycle: its curve starts after the earlier cycles' hours, and "
    "milestones reached before it show as -.")


PAIRED_NOTE = (
    "Each pair of models on the same test faces, from the predictions each entry recorded at export: the faces "
    "only one of the two gets right, and the exact McNemar test's two-sided p-value of the hypothesis that both "
    "are equally accurate (a small p: the split tells them apart). Needs the test labels: "
    "`python -m fer zoo report --data PATH`.")

OVERLAP_NOTE = (
    "FER-2013 repeats some faces across its splits. Each model's accuracy on the test faces that are pixel for pixel "
    "also faces of the training split (the validation slice included: the models trained on most of them) and on "
    "the rest, from the predictions each entry recorded at export: the second is the accuracy on faces no model "
    "has seen. Needs the training faces: `python -m fer zoo report --data PATH`.")


ENSEMBLE_NOTE = (
    "The ensemble averages its members' calibrated probabilities and scales the mean by a temperature of its own "
    "(where members disagree, their mean is less sure than it should be). Its members are chosen on the validation "
    "slice by `python -m fer zoo calibrate ensemble --data PATH`: of every set of two or more zoo models, the "
    "one whose mean scores most validation faces right (the test split plays no part).")


SELECTION_ROWS = 10  # candidate sets shown: 2^N - N - 1 of them for N models


def selection_table(selection: list[dict]) -> str:
    """The validation accuracy of the best SELECTION_ROWS candidate sets of ensemble members, the chosen (first)
    one in bold."""
    rows = ["| members | validation accuracy |", "|---|---|"]
    for i, row in enumerate(selection[:SELECTION_ROWS]):
        accuracy = f"{row['validation_accuracy']:.4f}"
        rows.append(f"| {' + '.join(f'`{n}`' for n in row['members'])} | "
                    + (f"**{accuracy}** (chosen) |" if i == 0 else f"{accuracy} |"))
    return "\n".join(rows)


def _table_key(table: str) -> str:
    """What names a markdown table: its first two column headers."""
    return "|".join(table.splitlines()[0].split("|")[:3])


def update_tables(text: str, tables: list[str]) -> str:
    """``text`` (a README) with each of its tables that has the first two column headers of one of ``tables``
    replaced by that table. A table it does not hold is an error, so a README cannot silently fall behind."""
    lines, out, used = text.splitlines(keepends=True), [], set()
    by_key = {_table_key(t): t for t in tables}
    if len(by_key) != len(tables):
        raise ValueError("update_tables: two of the tables share their first two column headers")
    i = 0
    while i < len(lines):
        key = _table_key(lines[i]) if lines[i].startswith("|") else None
        if key in by_key and (i == 0 or not lines[i - 1].startswith("|")):
            if key in used:
                raise ZooError(f"Two tables headed {key}| in the file: keep one, or head the other differently.")
            out.append(by_key[key] + "\n")
            used.add(key)
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            continue
        out.append(lines[i])
        i += 1
    missing = [k for k in by_key if k not in used]
    if missing:
        raise ZooError(f"No table headed {', '.join(k + '|' for k in missing)} to update: add one where it belongs.")
    return "".join(out)


def write_report(entries: list[ZooEntry], out_dir: Path, ensemble: Calibration | None = None,
                 selection: list[dict] | None = None, paired: str | None = None, overlap: str | None = None) -> Path:
    """Write REPORT.md with the tables and the figures into ``out_dir``; returns its path. ``ensemble``: the
    ensemble's calibration, if it has one; ``selection``: how its members were chosen (see selection_table);
    ``paired``: the paired comparison of the models (paired_table), when the test labels were at hand; ``overlap``:
    their accuracy on test faces also in the training split and on the others (overlap_table)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_f1_heatmap(entries, out_dir / "f1_per_class.png")
    plot_confusion_matrices(entries, out_dir / "confusion_matrices.png")
    drawn = plot_calibration(entries, ensemble, out_dir / RELIABILITY_FIGURE)
    cost_drawn = plot_training_cost(entries, out_dir / COST_FIGURE)
    splits = sorted({entry.test.split for entry in entries})
    command = "python -m fer zoo report" + (" --data PATH" if paired else "")
    text = (f"# Model zoo report\n\nFER-2013 {', '.join(splits)} split; regenerate with `{command}`.\n\n"
            + markdown_table(entries) + "\n\n![F1 per class](f1_per_class.png)\n\n"
            "![confusion matrices](confusion_matrices.png)\n\n"
            + (f"## Paired comparison\n\n{PAIRED_NOTE}\n\n{paired}\n\n" if paired else "")
            + (f"## Test faces also in the training split\n\n{OVERLAP_NOTE}\n\n{overlap}\n\n" if overlap else "")
            + (f"## Ensemble\n\n{ENSEMBLE_NOTE}\n\n{selection_table(selection)}\n\n" if selection else "")
            + "## Calibration\n\n" + CALIBRATION_NOTE + "\n\n"
            + calibration_table(entries, ensemble) + "\n"
            + (f"\n![reliability diagrams: accuracy against confidence, raw and calibrated]({RELIABILITY_FIGURE})\n"
               if drawn else "")
            + (f"\n## Training cost\n\n{COST_NOTE}\n\n{cost_table(entries)}\n\n"
               f"![validation accuracy against training hours]({COST_FIGURE})\n" if cost_drawn else ""))
    (out_dir / "REPORT.md").write_text(text)
    return out_dir / "REPORT.md"
