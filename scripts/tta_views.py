"""How much do more test-time views buy? Validation accuracy of a zoo model's bare network averaged over
sets of shifted and mirrored views of each face, from one view to a 50-view grid (the test split plays no
part). The zoo's ``flip_shift`` is the 10-view row; every view is made by the layers the zoo's TTA uses.

    python scripts/tta_views.py --model custom_cnn --data ../shared/fer2013      # a markdown table on stdout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer.data import load_dataset  # noqa: E402
from fer.evaluation import predict_scores  # noqa: E402
from fer.models import SHIFT_PIXELS, SHIFTS, HorizontalFlip, Shift  # noqa: E402
from fer.zoo import load_network  # noqa: E402

S = SHIFT_PIXELS
CROSS = [(0, 0), *SHIFTS]
VIEW_SETS = {
    "none": [(0, 0)],
    "flip": [(0, 0)],
    "flip_shift (the zoo's)": CROSS,
    "+ diagonal shifts": [(dy, dx) for dy in (-S, 0, S) for dx in (-S, 0, S)],
    f"+ shifts of {2 * S} px": CROSS + [(2 * S, 0), (-2 * S, 0), (0, 2 * S), (0, -2 * S)],
    f"5 x 5 grid, {S} px apart": [(dy, dx) for dy in range(-2 * S, 2 * S + 1, S) for dx in range(-2 * S, 2 * S + 1, S)],
}
"""Each set's shifts (dy, dx) in pixels; every set but ``none`` takes each shift of the face and of its mirror."""


def view_scores(network, faces: np.ndarray) -> dict[tuple[int, int, int], np.ndarray]:
    """Scores (N, 7) of ``network`` for every (mirrored, dy, dx) any set uses, each computed once."""
    x = faces[..., None].astype("float32")
    mirrored = np.asarray(HorizontalFlip()(x))
    shifts = {shift for views in VIEW_SETS.values() for shift in views}
    return {(m, dy, dx): predict_scores(network, np.asarray(Shift(dy, dx)(base)))
            for m, base in [(0, x), (1, mirrored)] for dy, dx in sorted(shifts)}


def table(scores: dict[tuple[int, int, int], np.ndarray], labels: np.ndarray) -> list[tuple[str, int, int]]:
    """(set, views, faces right) for every set in VIEW_SETS."""
    rows = []
    for name, shifts in VIEW_SETS.items():
        keys = [(0, *s) for s in shifts] + ([] if name == "none" else [(1, *s) for s in shifts])
        mean = np.mean([scores[k] for k in keys], axis=0)
        rows.append((name, len(keys), int((mean.argmax(axis=1) == labels).sum())))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="custom_cnn", help="zoo name, entry folder or .keras file")
    parser.add_argument("--zoo-dir", type=Path, default=None, help="model zoo (default: model_zoo)")
    parser.add_argument("--data", default="../shared/fer2013", help="the data the model was trained on")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    val = load_dataset(args.data, args.val_fraction, args.seed).val
    rows = table(view_scores(load_network(args.model, args.zoo_dir), val.images), val.labels)
    print(f"`{args.model}` on the validation slice ({len(val.labels)} faces, seed {args.seed}):\n")
    print("| views | count | validation accuracy | faces right |\n|---|---|---|---|")
    for name, count, right in rows:
        print(f"| {name} | {count} | {right / len(val.labels):.4f} | {right} |")


if __name__ == "__main__":
    main()
