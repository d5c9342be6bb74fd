"""Soups of a zoo entry and the entry it was warm-restarted from, scored on validation (no training).

Each shipped cycle of weight averaging started from the entry shipped before it, which git still holds: the
mean of the two (batch-norm statistics recomputed over the training faces, as ``train.py --soup`` does for a
cycle it trains) is scored on the validation slice with every test-time augmentation the architecture offers,
beside the scores the shipped entry and the one before it recorded at export. The test split plays no part.

    python scripts/soup_history.py --data ../shared/fer2013 [--models vgg16_bn resnet50v2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

log = logging.getLogger("soup_history")


def _git(*args: str, repo: Path = REPO) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout


def previous_commit(path: str, repo: Path = REPO) -> str:
    """The commit that holds ``path`` (relative to the repository) as it was before the commit that last changed it."""
    last = _git("log", "-n", "1", "--format=%H", "--", path, repo=repo).decode().strip()
    before = _git("log", "-n", "1", "--format=%H", f"{last}^", "--", path, repo=repo).decode().strip() if last else ""
    if not before:
        raise SystemExit(f"error: git holds no version of {path} before the present one.")
    return before


def score_soups(names: list[str], data: str, zoo_dir: Path, repo: Path = REPO) -> dict:
    """Per entry: the validation accuracy per TTA mode of the shipped entry and the earlier one (from their
    metrics.json, measured when each was exported) and of their soup (measured here)."""
    from fer.data import load_dataset
    from fer.models import architecture
    from fer.recipe import choose_tta
    from fer.soup import make_soup
    from fer.zoo import load_network

    dataset = load_dataset(data)  # the default slice: val_fraction 0.1, seed 0, as every zoo entry's
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            entry = (zoo_dir / name).relative_to(repo)
            commit = previous_commit(str(entry / "model.keras"), repo=repo)
            earlier = Path(tmp) / f"{name}_{commit[:7]}.keras"
            earlier.write_bytes(_git("show", f"{commit}:{entry / 'model.keras'}", repo=repo))
            shipped, before = load_network(str(zoo_dir / name)), load_network(str(earlier))
            soup = make_soup(shipped, before, dataset.train.images)
            row = {"earlier_commit": commit[:7],
                   "shipped": json.loads((zoo_dir / name / "metrics.json").read_text())["tta_validation_accuracy"],
                   "earlier": json.loads(_git("show", f"{commit}:{entry / 'metrics.json'}", repo=repo))[
                       "tta_validation_accuracy"],
                   "soup": choose_tta(soup, dataset.val, "auto", architecture(shipped.name).tta_modes)[2]}
            log.info("%s: %s", name, row)
            results[name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/fer2013")
    p.add_argument("--zoo-dir", type=Path, default=REPO / "model_zoo")
    p.add_argument("--models", nargs="+", default=["vgg16_bn", "resnet50v2", "custom_cnn"])
    p.add_argument("--json", type=Path, help="also write the scores here")
    p.add_argument("--repo", type=Path, default=REPO, help="the git repository holding --zoo-dir's history")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = score_soups(args.models, args.data, args.zoo_dir.resolve(), args.repo.resolve())
    print("| model | earlier entry | TTA | shipped | earlier | soup |\n|---|---|---|---|---|---|")
    for name, row in results.items():
        for mode in row["soup"]:  # every view the architecture offers; an entry records those it was scored with
            print(f"| {name} | {row['earlier_commit']} | {mode} | " +
                  " | ".join(f"{row[label].get(mode, float('nan')):.4f}" for label in ("shipped", "earlier", "soup"))
                  + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
