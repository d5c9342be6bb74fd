"""Short training runs side by side (issue 13: where CPU epochs buy most), from each run folder's config.json
and history.csv: the train.py flags where the runs differ (and each run's whole command), and validation accuracy (one view, on the slice
training selects checkpoints on; the test split plays no part) after given epochs.

    python scripts/recipe_table.py runs/recipes/*/          # a markdown table on stdout
    python scripts/recipe_table.py runs/recipes/*/ --after 3 5 10

A run still going is shown with the epochs it has finished.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer.options import command, command_args, options  # noqa: E402
from fer.training import TrainConfig, read_history  # noqa: E402

NOT_RECIPE = {"name", "output", "data", "zoo_dir", "export", "tta"}
"""Options that say where a run reads and writes, not how it trains."""


def load_run(run_dir: Path) -> tuple[TrainConfig, list[dict]]:
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise SystemExit(f"{run_dir} has no config.json: pass the folders train.py made (runs/NAME).")
    return TrainConfig.from_dict(json.loads(config_path.read_text())), read_history(run_dir / "history.csv")


def differing(configs: list[TrainConfig]) -> set[str]:
    """The options (dotted names) that set training and do not have one value in all ``configs``."""
    return {opt.name for opt in options(TrainConfig) if opt.name.split(".")[0] not in NOT_RECIPE
            and len({json.dumps(opt.get(c)) for c in configs}) > 1}


def recipe_table(runs: dict[str, tuple[TrainConfig, list[dict]]], after: list[int]) -> str:
    """One row per run: its differing flags, epochs done, median seconds an epoch, validation accuracy after each
    epoch of ``after`` and the best (with its epoch)."""
    differ = differing([config for config, _ in runs.values()])
    head = ["run", "recipe (flags that differ)", "epochs", "s / epoch", *[f"after {n}" for n in after], "best (epoch)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, (config, history) in runs.items():
        val = [float(row["val_accuracy"]) for row in history]
        seconds = [float(row["epoch_seconds"]) for row in history if row.get("epoch_seconds")]
        best = max(range(len(val)), key=val.__getitem__) if val else None
        flags = " ".join(command_args(config, keep=differ.__contains__))
        lines.append("| " + " | ".join([
            f"`{name}`", f"`{flags}`" if flags else "(defaults)", f"{len(val)} of {config.epochs}",
            f"{statistics.median(seconds):.0f}" if seconds else "-",
            *[f"{val[n - 1]:.4f}" if len(val) >= n else "-" for n in after],
            f"{val[best]:.4f} ({best + 1})" if best is not None else "-"]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (runs/NAME)")
    parser.add_argument("--after", nargs="+", type=int, default=[3, 5, 10],
                        help="epochs after which to show validation accuracy (default: 3 5 10)")
    args = parser.parse_args(argv)
    runs = {path.name: load_run(path) for path in args.runs}
    print(recipe_table(runs, args.after) + "\n\nThe commands:\n")
    for name, (config, _) in runs.items():
        print(f"- `{name}`: `{command('python train.py', config)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
