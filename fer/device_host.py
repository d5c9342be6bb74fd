"""The GPU machine's work as seen from this one: pack what it needs, reassemble what it sends back.

    pack:        data -> splits -> .devicepack/ (faces, split facts, class weights, wheels) + size check
    reassemble:  $OUT files -> runs/<name>/ (best.keras, config.json, history.csv, hardware.txt, device.json),
                 once the weights score here, on validation, what the device said they score
    record:      a device benchmark -> benchmarks/results.json

Then ``python train.py --arch A --output runs --name N --resume`` evaluates the run on test and exports it
to the zoo, as for a run trained here.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fer.device_files import (
    DEVICE_FILE,
    PACK_WHEELS,
    DeviceRunError,
    RunReport,
    class_weight_table,
    read_shards,
    split_digest,
    write_pack_faces,
)
from fer.errors import TrainingError
from fer.zoo import MODEL_FILE
from fer.zoo import REPO_ROOT as REPO

log = logging.getLogger(__name__)

TRAVEL_BUDGET = 64 * 2**20  # the device tool carries the working tree and the carried folders up to this
DEVICE_PYTHON = "3.12"
DEVICE_WHEELS = ("keras", "namex", "optree")
"""Keras and those of its requirements the device image lacks (it has absl-py, h5py, ml-dtypes, numpy,
packaging and rich): pinned to the versions installed here."""
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
AGREEMENT = 0.001  # the largest validation-accuracy difference between the device and here that is accepted


@dataclass
class PackSize:
    """What a device call would carry, in bytes."""

    pack: int
    tree: int
    largest_tree_files: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return self.pack + self.tree

    def summary(self) -> str:
        return (f"pack {self.pack / 2**20:.1f} MiB + working tree {self.tree / 2**20:.1f} MiB = "
                f"{self.total / 2**20:.1f} MiB of the {TRAVEL_BUDGET / 2**20:.0f} MiB a device call carries")


def pack(data: str, val_fraction: float, seed: int, pack_dir: Path, wheels: bool = True) -> PackSize:
    """Write ``pack_dir``: the train and validation faces of ``data`` as ``load_dataset(data, val_fraction,
    seed)`` splits them (never the test faces), their class weights and, with ``wheels``, the wheels the
    device lacks. Refuses when the pack and the working tree together are over the travel budget."""
    from fer.data import load_dataset

    dataset = load_dataset(data, val_fraction=val_fraction, seed=seed)
    log.info("Data:\n%s", dataset.summary())
    meta = {"data": str(data), "kind": dataset.kind, "val_fraction": val_fraction, "seed": seed,
            "train_faces": len(dataset.train), "val_faces": len(dataset.val),
            "val_digest": split_digest(dataset.val.images, dataset.val.labels),
            "class_weights": class_weight_table(dataset.train.labels)}
    write_pack_faces(pack_dir, (dataset.train.images, dataset.train.labels),
                     (dataset.val.images, dataset.val.labels), meta)
    if wheels:
        log.info("Wheels: %s", ", ".join(p.name for p in download_wheels(pack_dir / PACK_WHEELS)))
    size = travel_size(pack_dir)
    if size.total > TRAVEL_BUDGET:
        largest = ", ".join(f"{path} ({n / 2**20:.1f} MiB)" for path, n in size.largest_tree_files)
        raise DeviceRunError(f"Too big for a device call: {size.summary()}. Largest files of the working tree: "
                             f"{largest}. Move the zoo's weights aside for the device calls (python "
                             "scripts/device_train.py aside; back after the last call: python "
                             "scripts/device_train.py back), or other big files into an ignored folder.")
    return size


ASIDE_DIR = ".zoo-aside"  # ignored: where `device_train.py aside` keeps the zoo's weights during device calls


def zoo_weights_aside(repo: Path = REPO) -> list[Path]:
    """Move every zoo entry's weights (model_zoo/NAME/model.keras) to ASIDE_DIR/NAME/, out of the working tree a
    device call carries; returns what moved. Put them back with zoo_weights_back."""
    moved = []
    for weights in sorted((repo / "model_zoo").glob(f"*/{MODEL_FILE}")):
        target = repo / ASIDE_DIR / weights.parent.name / MODEL_FILE
        if target.exists():
            raise DeviceRunError(f"{target} exists: bring the weights back first (device_train.py back).")
        target.parent.mkdir(parents=True, exist_ok=True)
        weights.rename(target)
        moved.append(weights)
    return moved


def zoo_weights_back(repo: Path = REPO) -> list[Path]:
    """Undo zoo_weights_aside: every ASIDE_DIR/NAME/model.keras back to model_zoo/NAME/; returns what moved."""
    moved = []
    for kept in sorted((repo / ASIDE_DIR).glob(f"*/{MODEL_FILE}")):
        target = repo / "model_zoo" / kept.parent.name / MODEL_FILE
        if target.exists():
            raise DeviceRunError(f"{target} exists as well as {kept}: keep one of them and run back again.")
        kept.rename(target)
        kept.parent.rmdir()
        moved.append(target)
    return moved


def download_wheels(folder: Path) -> list[Path]:
    """The DEVICE_WHEELS for the device's Python, at the versions installed here (downloaded once)."""
    folder.mkdir(parents=True, exist_ok=True)
    found = []
    for name in DEVICE_WHEELS:
        version = importlib.metadata.version(name)
        pattern = f"{name}-{version}-*.whl"
        if not list(folder.glob(pattern)):
            platforms = [word for p in WHEEL_PLATFORMS for word in ("--platform", p)]
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                   "--python-version", DEVICE_PYTHON, "--implementation", "cp", *platforms,
                                   "-d", str(folder), f"{name}=={version}"], capture_output=True, text=True)
            if done.returncode != 0:
                raise DeviceRunError(f"pip could not download {name}=={version} for Python {DEVICE_PYTHON}: "
                                     f"{done.stderr.strip()[-500:]} (check the network, or put the wheel in {folder}).")
        found += list(folder.glob(pattern))
    return found


def travel_size(pack_dir: Path) -> PackSize:
    """The bytes of ``pack_dir`` and of the working tree a device call sends (tracked files and untracked
    ones git does not ignore)."""
    repo = REPO
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    sizes = {name: (repo / name).stat().st_size for name in listed if name and (repo / name).is_file()}
    pack_bytes = sum(p.stat().st_size for p in Path(pack_dir).rglob("*") if p.is_file())
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
    return PackSize(pack_bytes, sum(sizes.values()), largest)


@dataclass
class Reassembled:
    """A device run turned into a run folder here."""

    run_dir: Path
    architecture: str
    val_accuracy_here: float
    val_accuracy_device: float
    epochs: int

    def next_command(self) -> str:
        return (f"python train.py --arch {self.architecture} --output {self.run_dir.parent} "
                f"--name {self.run_dir.name} --resume")


def reassemble(fetched: Path, output: str = "runs", name: str | None = None, data: str | None = None,
               partial: bool = False) -> Reassembled:
    """Rebuild the device run whose $OUT files are in ``fetched`` as ``<output>/<name>/``.

    The float16 weights are loaded (as float32) into ``fer.models.build_model``'s network and scored on
    the same validation slice as on the device; a difference over AGREEMENT is refused before anything is
    written. A run that has not done all its epochs is refused unless ``partial`` (its config then says
    the epochs done).
    """
    from fer.data import load_dataset
    from fer.training import TrainConfig

    report = RunReport.read(fetched)
    if report.best_epoch < 0:
        raise DeviceRunError(f"{fetched}: the device has not finished an epoch yet: fetch after a command that did.")
    if not report.finished and not partial:
        raise DeviceRunError(f"{fetched}: the device run has done {report.epochs_done} of "
                             f"{report.train_config['epochs']} epochs: run the device command again with --resume "
                             "and fetch again, or pass --partial to keep the epochs done.")
    config = TrainConfig.from_dict({**report.train_config, "output": output, "name": name or report.run_name,
                                    "data": data or report.train_config["data"],
                                    "epochs": report.epochs_done if partial else report.train_config["epochs"]})
    config.validate()
    dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    if split_digest(dataset.val.images, dataset.val.labels) != report.pack["val_digest"]:
        raise DeviceRunError(f"The validation slice of {config.data} (fraction {config.val_fraction}, seed "
                             f"{config.seed}) is not the one the device trained on: pass --data with the data "
                             "that was packed.")
    network = load_device_weights(config.architecture, read_shards(fetched, report))
    accuracy = check_agreement(network, dataset.val, report)
    write_run(config, network, report)
    return Reassembled(config.run_dir, config.architecture, accuracy, report.best_val_accuracy, report.epochs_done)


def load_device_weights(architecture: str, weights: dict):
    """``build_model(architecture)`` holding ``weights`` (variable path -> array); refuses weights that do
    not fit it exactly."""
    from fer.models import build_model

    network = build_model(architecture)
    paths = [w.path for w in network.weights]
    if sorted(paths) != sorted(weights):
        missing, extra = sorted(set(paths) - set(weights)), sorted(set(weights) - set(paths))
        raise DeviceRunError(f"The device's weights do not fit {architecture} here (missing {missing[:3]}, extra "
                             f"{extra[:3]}): run the same commit on both machines.")
    for variable in network.weights:
        if tuple(variable.shape) != weights[variable.path].shape:
            raise DeviceRunError(f"{variable.path}: the device sent shape {weights[variable.path].shape}, "
                                 f"{architecture} here has {tuple(variable.shape)}: run the same commit on both machines.")
        variable.assign(weights[variable.path])
    return network


def check_agreement(network, val_split, report: RunReport) -> float:
    """The network's validation accuracy here, refused if it is more than AGREEMENT from the device's."""
    from fer.evaluation import evaluate_model

    accuracy = evaluate_model(network, val_split).accuracy
    log.info("Validation accuracy here %.4f, on the device %.4f", accuracy, report.best_val_accuracy)
    if abs(accuracy - report.best_val_accuracy) > AGREEMENT:
        raise DeviceRunError(f"The reassembled weights score {accuracy:.4f} on validation here, the device reported "
                             f"{report.best_val_accuracy:.4f} (more than {AGREEMENT} apart): nothing was written. "
                             "Check that both machines run the same commit and that the fetched files come from "
                             "one command, then fetch again.")
    return accuracy


def write_run(config, network, report: RunReport) -> None:
    """Write the run folder fer.training would have written: best.keras, config.json, history.csv,
    hardware.txt; and the device's report as device.json."""
    from fer.training import HARDWARE_FILE, save_run_config

    run_dir = config.run_dir
    if (run_dir / "config.json").exists() and not (run_dir / DEVICE_FILE).exists():
        raise TrainingError(f"{run_dir} holds a run trained here: pass another --name or --output.")
    run_dir.mkdir(parents=True, exist_ok=True)
    network.save(run_dir / "best.keras")
    save_run_config(run_dir, config)
    with open(run_dir / "history.csv", "w", newline="") as f:
        columns = ["epoch", *sorted(k for k in report.history[0] if k != "epoch")]  # as Keras's CSVLogger
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(report.history)
    (run_dir / HARDWARE_FILE).write_text(f"{report.hardware} ({report.precision}, JAX)\n")
    (run_dir / DEVICE_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def run_as_benchmark(report: RunReport) -> dict:
    """A finished device run's measured training speed, in the form ``bench`` writes: whole epochs of a
    real run (augmentation included), where ``bench`` times a few steps."""
    if not report.finished:
        raise DeviceRunError(f"{report.run_name} did {report.epochs_done} of {report.train_config['epochs']} "
                             "epochs: record the speed of finished runs only.")
    config = report.train_config
    return {"device": report.device, "hardware": report.hardware, "precision": report.precision,
            "batch_size": config["batch_size"], "versions": report.versions,
            "architectures": {config["architecture"]: {
                "faces_per_second": report.faces_per_second, "compile_seconds": report.compile_seconds,
                "run": report.run_name, "epochs": report.epochs_done,
                "measured": "the training steps of the run's last device command"}}}


def record_benchmark(bench: dict, results: Path) -> str:
    """Merge a device benchmark (``bench``'s JSON, or a finished run's report.json) into ``results``
    (benchmarks/results.json) under ``device_training``, keyed by device, precision and batch; the
    architectures it measured replace theirs under that key, the others stay. Returns the key."""
    if "run_name" in bench:
        bench = run_as_benchmark(RunReport.from_dict(bench))
    data = json.loads(results.read_text()) if results.exists() else {}
    key = f"{bench['device']} {bench['precision']} batch {bench['batch_size']}"
    recorded = data.setdefault("device_training", {}).get(key, {})
    data["device_training"][key] = {**recorded, **bench, "architectures": {**recorded.get("architectures", {}),
                                                                           **bench["architectures"]}}
    results.write_text(json.dumps(data, indent=2) + "\n")
    return key
