"""scripts/recipe_table.py: short training runs compared from their folders."""

import json
import subprocess
import sys

from conftest import REPO
from fer.training import TrainConfig

SCRIPT = REPO / "scripts" / "recipe_table.py"


def _run_folder(root, name, config, val_accuracies, seconds=60.0):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    rows = [f"{i},0.5,{seconds + i},1.0,{v},1.2" for i, v in enumerate(val_accuracies)]
    (folder / "history.csv").write_text("epoch,accuracy,epoch_seconds,loss,val_accuracy,val_loss\n" + "\n".join(rows))
    return folder


def test_the_table_names_what_each_run_changes_and_its_validation_accuracy_by_epoch(tmp_path):
    base = _run_folder(tmp_path, "base", TrainConfig(name="base", epochs=4), [0.3, 0.4, 0.5, 0.55])
    onecycle = _run_folder(tmp_path, "onecycle", TrainConfig(name="onecycle", epochs=4, schedule="onecycle",
                                                             learning_rate=3e-3), [0.2, 0.45, 0.6])
    out = subprocess.run([sys.executable, str(SCRIPT), str(base), str(onecycle), "--after", "2", "4"],
                         capture_output=True, text=True, check=True).stdout
    rows = {line.split(" | ")[0]: line for line in out.splitlines() if line.startswith("| `")}
    assert rows["| `base`"] == "| `base` | (defaults) | 4 of 4 | 62 | 0.4000 | 0.5500 | 0.5500 (4) |"
    assert rows["| `onecycle`"] == ("| `onecycle` | `--lr 0.003 --schedule onecycle` | 3 of 4 | 61 | 0.4500 | - | "
                                    "0.6000 (3) |"), "a run still going shows the epochs it has done"
    assert "- `onecycle`: `python train.py --name onecycle --epochs 4 --lr 0.003 --schedule onecycle`" in out
