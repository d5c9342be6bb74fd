"""What travels between this machine and the GPU machine, read and written in one place (numpy only).

    here -> device:  the pack (.devicepack/): train + validation faces, the split that made them, the
                     class weights, the Keras wheels the device lacks
    device -> here:  $OUT/report.json (the run: config, history, best epoch, device, speed) and
                     $OUT/weights-NN.npz (the best epoch's weights as float16, each shard under 15 MiB)

Both sides import this module, so it imports neither TensorFlow nor JAX.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer.errors import TrainingError
from fer.labels import NUM_CLASSES
from fer.options import option

PACK_DIR = ".devicepack"
PACK_FACES = "fer2013.npz.xz"
PACK_META = "pack.json"
PACK_WHEELS = "wheels"
REPORT_FILE = "report.json"
DEVICE_FILE = "device.json"  # in a run folder: the device's report; marks a run reassembled from the device
SHARD_BYTES = 15 * 2**20  # the device tool returns files of up to 16 MiB
MAX_OUT_FILES = 8  # ... and at most 8 of them: the report, the shards, the log
PRECISIONS = ("auto", "bfloat16", "float32")
OPTIMIZERS = ("adamw", "sgd")


class DeviceRunError(TrainingError):
    """A device run cannot be packed, trained, resumed or reassembled as asked."""


@dataclass
class DeviceConfig:
    """The device trainer's options beyond fer.training.TrainConfig's (which it shares)."""

    optimizer: str = option("adamw", "adamw, or sgd with Nesterov momentum (pass a small --weight-decay "
                                      "with it, about 5e-4)", choices=OPTIMIZERS)
    momentum: float = option(0.9, "SGD's momentum")
    mixup: float = option(0.0, "mixup: alpha of the Beta(alpha, alpha) blending weight (0: off)")
    erasing: float = option(0.0, "random erasing: probability per face (0: off)")
    precision: str = option("auto", "compute precision: bfloat16 (mixed, weights in float32) on a GPU, "
                                    "float32 on a CPU, or as given", choices=PRECISIONS)
    fit_epochs: bool = option(False, "lay the warm-up and learning-rate schedule over the epochs that fit in "
                                     "this command's --time-budget (at most --epochs), re-planned after each "
                                     "epoch, so that a run cut by its budget still ends its schedule")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Pack:
    """A pack's faces and the facts about them (``pack.json``)."""

    train_images: np.ndarray  # uint8 (N, 48, 48)
    train_labels: np.ndarray  # int (N,)
    val_images: np.ndarray
    val_labels: np.ndarray
    meta: dict  # data, kind, val_fraction, seed, val_digest, class_weights {mode: [7 floats]}, counts


def split_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of a split's faces and labels: the same faces in the same order give the same digest."""
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.asarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def write_pack_faces(folder: Path, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                     meta: dict) -> None:
    """Write the faces (xz-compressed npz: lossless, about 47 MiB for FER-2013's train folder) and
    ``pack.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, train_images=train[0], train_labels=train[1].astype(np.uint8),
             val_images=val[0], val_labels=val[1].astype(np.uint8))
    _write_atomically(folder / PACK_FACES, lzma.compress(buffer.getvalue(), preset=9))
    _write_atomically(folder / PACK_META, (json.dumps(meta, indent=2) + "\n").encode())


def read_pack(folder: Path) -> Pack:
    """The faces and facts ``write_pack_faces`` wrote to ``folder``."""
    faces, meta = folder / PACK_FACES, folder / PACK_META
    if not faces.is_file() or not meta.is_file():
        raise DeviceRunError(f"No pack in {folder}: run `python scripts/device_train.py pack` on the machine "
                             f"with the data, and carry {PACK_DIR} along to the device.")
    with np.load(io.BytesIO(lzma.decompress(faces.read_bytes()))) as arrays:
        return Pack(arrays["train_images"], arrays["train_labels"].astype(np.int32),
                    arrays["val_images"], arrays["val_labels"].astype(np.int32), json.loads(meta.read_text()))


@dataclass
class RunReport:
    """A device run as the device last reported it: everything reassembly and the zoo need."""

    run_name: str
    train_config: dict  # fer.training.TrainConfig.to_dict()
    device_config: dict  # DeviceConfig.to_dict()
    pack: dict  # the pack's meta: which data, which validation slice
    device: str  # jax's device kind, e.g. "NVIDIA H100 80GB HBM3"
    hardware: str  # in words, for the model card: "one NVIDIA H100 80GB HBM3 GPU"
    precision: str  # the Keras dtype policy trained with: mixed_bfloat16 or float32
    epochs_done: int = 0
    best_epoch: int = -1  # 0-based, as history.csv counts
    best_val_accuracy: float = 0.0  # of the float16 weights below, computed in float32
    faces_per_second: float = 0.0  # training steps only (augmentation included), this run's last command
    compile_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)  # history.csv's rows
    weights: list[dict] = field(default_factory=list)  # per variable: path, shape, shard, key
    shards: dict[str, str] = field(default_factory=dict)  # shard file -> sha256
    versions: dict[str, str] = field(default_factory=dict)
    epochs_asked: int = 0  # --epochs, where --fit-epochs planned fewer (train_config's epochs: the plan)

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.train_config["epochs"]

    def record_epoch(self, row: dict) -> bool:
        """Add an epoch's history row (epoch, accuracy, loss, val_accuracy, val_loss, epoch_seconds);
        returns whether its validation accuracy is the best so far (it then becomes the best epoch)."""
        self.history.append(row)
        self.epochs_done = row["epoch"] + 1
        improved = self.best_epoch < 0 or row["val_accuracy"] > self.best_val_accuracy
        if improved:
            self.best_epoch, self.best_val_accuracy = row["epoch"], row["val_accuracy"]
        return improved

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunReport":
        return cls(**d)

    def write(self, folder: Path) -> None:
        _write_atomically(folder / REPORT_FILE, (json.dumps(self.to_dict(), indent=2) + "\n").encode())

    @classmethod
    def read(cls, folder: Path) -> "RunReport":
        path = folder / REPORT_FILE
        if not path.is_file():
            raise DeviceRunError(f"No {REPORT_FILE} in {folder}: pass the folder the device's $OUT files were "
                                 "fetched to (files_at).")
        return cls.from_dict(json.loads(path.read_text()))


def write_shards(folder: Path, named: list[tuple[str, np.ndarray]]) -> tuple[list[dict], dict[str, str]]:
    """Write weights (variable path, array) as float16 in npz shards of at most SHARD_BYTES each.

    Returns the index (path, shape, shard, key per variable) and each shard's sha256.
    """
    groups: list[list[int]] = [[]]
    size = 0
    for i, (path, array) in enumerate(named):
        nbytes = array.size * 2
        if nbytes > SHARD_BYTES:
            raise DeviceRunError(f"Variable {path} alone is {nbytes / 2**20:.0f} MiB as float16, over a shard's "
                                 f"{SHARD_BYTES / 2**20:.0f} MiB: this architecture cannot travel back in shards.")
        if size + nbytes > SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += nbytes
    if len(groups) + 2 > MAX_OUT_FILES:  # + the report and the log
        raise DeviceRunError(f"{len(groups)} shards of weights: more than the {MAX_OUT_FILES - 2} that can travel "
                             "back with the report and the log.")
    index, digests = [], {}
    for number, members in enumerate(groups):
        name = f"weights-{number:02d}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, **{f"w{i}": np.asarray(named[i][1], dtype=np.float16) for i in members})
        data = buffer.getvalue()
        _write_atomically(folder / name, data)
        digests[name] = hashlib.sha256(data).hexdigest()
        index += [{"path": named[i][0], "shape": list(named[i][1].shape), "shard": name, "key": f"w{i}"}
                  for i in members]
    return index, digests


def read_shards(folder: Path, report: RunReport) -> dict[str, np.ndarray]:
    """The weights of ``report`` (variable path -> float32 array), after checking each shard's sha256."""
    for name, digest in report.shards.items():
        path = folder / name
        if not path.is_file():
            raise DeviceRunError(f"{path} is missing: fetch every file of the device's $OUT.")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise DeviceRunError(f"{path} does not match {REPORT_FILE} (written by another epoch): fetch the "
                                 "files of a command that ended normally, or run the device command again.")
    shards = {name: np.load(folder / name) for name in report.shards}
    return {w["path"]: shards[w["shard"]][w["key"]].astype(np.float32) for w in report.weights}


def class_weight_table(labels: np.ndarray) -> dict[str, list[float]]:
    """fer.augment.class_weights for each named mode, as lists: the device reads them from the pack, so
    it needs no scikit-learn."""
    from fer.augment import CLASS_WEIGHT_MODES, class_weights

    return {mode: [class_weights(labels, mode)[c] for c in range(NUM_CLASSES)] for mode in CLASS_WEIGHT_MODES}


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file: a killed command never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
