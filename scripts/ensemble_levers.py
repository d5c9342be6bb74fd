"""Would the zoo gain from fitted ensemble weights or per-class score offsets? Each is fitted on one half of
the validation slice and measured on the other (2-fold, repeated over seeded stratified halves), against the
zoo as it ships: the equal mean of the members, no offsets. The test split plays no part.

- weights: the members' weights on a simplex grid (steps of 0.1), averaging probabilities or log-probabilities,
  chosen for accuracy;
- offsets: one additive offset per class on a model's log-probabilities, chosen by coordinate ascent for
  accuracy while every class's recall stays at or above ``--recall-floor`` (the floor comes first).

    python scripts/ensemble_levers.py --data ../shared/fer2013      # a markdown table on stdout
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer.ensemble import ENSEMBLE, combine  # noqa: E402
from fer.labels import EMOTIONS  # noqa: E402

OFFSETS = np.round(np.arange(-1.0, 1.0001, 0.05), 2)
"""The values coordinate ascent tries for each class's offset."""


def recalls(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Recall of every class (a class absent from ``labels`` counts as 1)."""
    return np.array([(predicted[labels == k] == k).mean() if (labels == k).any() else 1.0
                     for k in range(len(EMOTIONS))])


def simplex(members: int, step: float = 0.1) -> list[np.ndarray]:
    """Every weight vector of ``members`` non-negative multiples of ``step`` summing to 1."""
    n = round(1 / step)
    return [np.array(w) / n for w in itertools.product(range(n + 1), repeat=members) if sum(w) == n]


def weighted(scores: np.ndarray, weights: np.ndarray, log: bool) -> np.ndarray:
    """The weighted mean of stacked (M, N, 7) probabilities, or of their logarithms."""
    return np.tensordot(weights, np.log(np.clip(scores, 1e-7, 1)) if log else scores, axes=1)


def fit_weights(scores: np.ndarray, labels: np.ndarray, log: bool) -> np.ndarray:
    """The grid's most accurate weights; ties go to the weights nearest the equal mean."""
    equal = np.full(len(scores), 1 / len(scores))
    return max(simplex(len(scores)),
               key=lambda w: ((weighted(scores, w, log).argmax(1) == labels).sum(), -np.abs(w - equal).sum()))


def fit_offsets(scores: np.ndarray, labels: np.ndarray, floor: float, passes: int = 3) -> np.ndarray:
    """Per-class offsets on log-probabilities: most accurate with every recall >= ``floor`` (or nearest to it)."""
    logp = np.log(np.clip(scores, 1e-7, 1))

    def objective(offsets: np.ndarray) -> tuple[float, float]:
        predicted = (logp + offsets).argmax(1)
        return min(recalls(predicted, labels).min(), floor), (predicted == labels).mean()

    offsets = np.zeros(len(EMOTIONS))
    for _ in range(passes):
        for k in range(len(EMOTIONS)):
            offsets[k] = max(OFFSETS, key=lambda v: (objective(np.where(np.arange(len(offsets)) == k, v, offsets)),
                                                      -abs(v)))
    return offsets


def cross_validate(fit: Callable, apply: Callable, baseline: Callable, labels: np.ndarray, repeats: int,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out accuracy change (points) and the baseline's and fitted lever's lowest class recall, per fold."""
    from sklearn.model_selection import StratifiedKFold

    gains, low_before, low_after = [], [], []
    for repeat in range(repeats):
        for fit_on, held in StratifiedKFold(2, shuffle=True, random_state=repeat).split(labels, labels):
            lever = fit(fit_on)
            before, after = baseline(held), apply(lever, held)
            gains.append(100 * ((after == labels[held]).mean() - (before == labels[held]).mean()))
            low_before.append(recalls(before, labels[held]).min())
            low_after.append(recalls(after, labels[held]).min())
    return np.array(gains), np.array(low_before), np.array(low_after)


def rows(members: dict[str, np.ndarray], labels: np.ndarray, repeats: int, floor: float) -> list[str]:
    """The markdown rows: every lever on every model it applies to."""
    stacked = np.stack(list(members.values()))
    models = {**members, ENSEMBLE: np.asarray(combine(stacked))}  # the ensemble as fer.ensemble defines it
    out = []

    def row(lever: str, model: str, result) -> None:
        gains, before, after = result
        out.append(f"| {lever} | {model} | {gains.mean():+.2f} ± {gains.std():.2f} | {gains.min():+.2f} to "
                   f"{gains.max():+.2f} | {before.mean():.3f} | {after.mean():.3f} |")

    def equal_mean(held):
        return models[ENSEMBLE][held].argmax(1)

    for log in (False, True):
        row(f"member weights ({'log-' if log else ''}probabilities)", ENSEMBLE, cross_validate(
            lambda fit_on, log=log: fit_weights(stacked[:, fit_on], labels[fit_on], log),
            lambda w, held, log=log: weighted(stacked[:, held], w, log).argmax(1), equal_mean, labels, repeats))
    for name, scores in models.items():
        logp = np.log(np.clip(scores, 1e-7, 1))
        row(f"class offsets (recall floor {floor})", name, cross_validate(
            lambda fit_on, s=scores: fit_offsets(s[fit_on], labels[fit_on], floor),
            lambda offsets, held, lp=logp: (lp[held] + offsets).argmax(1),
            lambda held, s=scores: s[held].argmax(1), labels, repeats))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/fer2013", help="the data the zoo was trained on")
    parser.add_argument("--zoo-dir", type=Path, default=None, help="model zoo (default: model_zoo)")
    parser.add_argument("--repeats", type=int, default=10, help="2-fold splits of the validation slice")
    parser.add_argument("--recall-floor", type=float, default=0.5, help="offsets: the lowest class recall wanted")
    args = parser.parse_args(argv)

    from fer.data import load_dataset
    from fer.evaluation import score_calibrated
    from fer.export import common_validation_slice
    from fer.zoo import ensemble_members, list_entries

    names = ensemble_members(args.zoo_dir)
    val_fraction, seed = common_validation_slice([e for e in list_entries(args.zoo_dir) if e.name in names])
    val = load_dataset(args.data, val_fraction=val_fraction, seed=seed).val
    members = {name: score_calibrated(name, val.images, args.zoo_dir).calibrated for name in names}
    ensemble = np.asarray(combine(np.stack(list(members.values()))))
    print(f"Validation slice: {len(val.labels)} faces; accuracy as shipped: "
          + ", ".join(f"{n} {(s.argmax(1) == val.labels).mean():.4f}" for n, s in members.items())
          + f", equal mean {(ensemble.argmax(1) == val.labels).mean():.4f}\n")
    print("| lever | model | held-out accuracy change, points (mean ± sd) | range | lowest recall as shipped "
          "| lowest recall with the lever |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows(members, val.labels, args.repeats, args.recall_floor)))


if __name__ == "__main__":
    main()
