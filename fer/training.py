"""Training: splits -> tf.data pipeline (augment) -> model -> fit.

A run lives in its own folder (``runs/<name>/``): ``config.json``, ``history.csv``, a backup of the
last finished epoch (for ``--resume``) and ``best.keras`` (the epoch with the best validation
accuracy). ``fer.recipe`` drives a whole run, from data to zoo entry.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer.augment import AugmentConfig, class_weights, format_class_weights, oversample_indices
from fer.data import Dataset
from fer.labels import NUM_CLASSES

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json`` beside its outputs."""

    architecture: str = "custom_cnn"
    data: str = "../shared/fer2013"
    name: str | None = None  # zoo entry name; defaults to the architecture
    output: str = "runs"
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # cosine (with warmup) or constant
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    class_weight: str = "sqrt"
    oversample: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    val_fraction: float = 0.1
    seed: int = 0
    weights: str | None = None
    tta: str = "auto"  # none, flip, flip_shift, or auto (the best on validation): baked into the exported model
    zoo_dir: str = "model_zoo"
    export: bool = True

    @property
    def run_name(self) -> str:
        return self.name or self.architecture

    @property
    def run_dir(self) -> Path:
        return Path(self.output) / self.run_name

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["augment"] = AugmentConfig(**d.get("augment", {}))
        return cls(**d)


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, *, augmenter=None,
                 shuffle: bool = False, seed: int = 0, oversample: float = 0.0):
    """A tf.data pipeline of (float 0-255 faces (N,48,48,1), one-hot labels), augmented on the fly."""
    import tensorflow as tf

    if oversample > 0:
        idx = oversample_indices(labels, oversample, seed)
        images, labels = images[idx], labels[idx]
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_model_input(x, y):
        x = tf.cast(x, tf.float32)[..., None]
        if augmenter is not None:
            x = tf.clip_by_value(augmenter(x, training=True), 0.0, 255.0)
        return x, tf.one_hot(y, NUM_CLASSES)

    return ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    import keras

    if config.schedule == "constant":
        return config.learning_rate
    if config.schedule != "cosine":
        raise ValueError(f"unknown schedule {config.schedule!r}: use cosine or constant")
    warmup = int(config.warmup_epochs * steps_per_epoch)
    total = config.epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.01 if warmup else config.learning_rate,
        decay_steps=max(1, total - warmup), alpha=0.01,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)


def _best_so_far(history_csv: Path) -> float | None:
    if not history_csv.exists():
        return None
    with open(history_csv) as f:
        values = [float(r["val_accuracy"]) for r in csv.DictReader(f) if r.get("val_accuracy")]
    return max(values) if values else None


def prepare_run_dir(config: TrainConfig, resume: bool) -> None:
    run_dir = config.run_dir
    config_path = run_dir / "config.json"
    if config_path.exists() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume to continue it, "
                              "or choose another --name / --output.")
    if resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        if saved != config.to_dict():
            log.warning("Resuming %s with a config that differs from the saved one; the saved one is kept.",
                        run_dir)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")


def load_run_config(run_dir: Path) -> TrainConfig:
    return TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))


def _epoch_timer_class():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Adds ``epoch_seconds`` to the logs, so history.csv records the training cost."""

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = round(time.time() - self._start, 2)

    return EpochTimer


def training_seconds(history_csv: Path) -> float:
    """Total seconds of the epochs recorded in history.csv (across resumes)."""
    with open(history_csv) as f:
        return sum(float(r.get("epoch_seconds") or 0) for r in csv.DictReader(f))


def fit(config: TrainConfig, dataset: Dataset, resume: bool = False):
    """Train (or resume) the run; returns the best-on-validation model."""
    import keras

    keras.utils.set_random_seed(config.seed)
    from fer.augment import build_augmenter
    from fer.models import build_model

    EpochTimer = _epoch_timer_class()
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh run never inherits a stale backup or history
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        (run_dir / "history.csv").unlink(missing_ok=True)
    weights = class_weights(dataset.train.labels, config.class_weight)
    log.info("Class weights (%s): %s", config.class_weight, format_class_weights(weights))
    augmenter = build_augmenter(config.augment)
    train_ds = make_dataset(dataset.train.images, dataset.train.labels, config.batch_size,
                            augmenter=augmenter, shuffle=True, seed=config.seed, oversample=config.oversample)
    val_ds = make_dataset(dataset.val.images, dataset.val.labels, 256)
    steps_per_epoch = int(train_ds.cardinality())

    model = build_model(config.architecture, weights=config.weights)
    model.compile(
        optimizer=keras.optimizers.AdamW(_learning_rate(config, steps_per_epoch), weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=False,  # XLA is slower than the plain kernels on CPU here
    )
    callbacks = [
        EpochTimer(),
        # Saves weights + optimizer state every epoch; restores them on --resume.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_accuracy", mode="max",
                                        save_best_only=True,
                                        initial_value_threshold=_best_so_far(run_dir / "history.csv")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, class_weight=weights,
              callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    # compile=False: the exported model carries weights only, not the optimizer's state.
    return keras.saving.load_model(run_dir / "best.keras", safe_mode=True, compile=False)
