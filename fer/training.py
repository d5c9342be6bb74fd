"""Training: splits -> tf.data pipeline (augment) -> model -> fit.

A run lives in its own folder (``runs/<name>/``): ``config.json``, ``history.csv``, a backup of the
last finished epoch (for ``--resume``) and ``best.keras`` (the epoch with the best validation
accuracy). ``fer.recipe`` drives a whole run, from data to zoo entry.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer.augment import CLASS_WEIGHT_MODES, AugmentConfig, class_weights, format_class_weights, oversample_indices
from fer.errors import ConfigError, TrainingError
from fer.labels import NUM_CLASSES
from fer.names import ARCHITECTURE_NAMES, TTA_MODES
from fer.options import command_args, option, options

if TYPE_CHECKING:  # fer.data reads images with OpenCV; the GPU trainer (fer.device) imports this module without it
    from fer.data import Dataset, Split

log = logging.getLogger(__name__)


SCHEDULES = ("cosine", "onecycle", "constant")
ONECYCLE_WARMUP = 0.3  # one-cycle: share of the steps spent rising to the peak
ONECYCLE_START = 1 / 25  # one-cycle: start at this fraction of the peak (Smith & Topin 2019)
STRATEGIES = ("default", "mirrored")


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json`` beside its outputs.

    Each field is also train.py's option of the same name (see fer.options): adding one here adds the
    flag, its line in the reproduce command and its row in the model card.
    """

    architecture: str = option("custom_cnn", "architecture to train", flag="--arch", choices=ARCHITECTURE_NAMES)
    data: str = option("../shared/fer2013",
                       "fer2013.csv, a folder with train/ and test/, or an emotion-folder tree")
    name: str | None = option(None, "run and zoo entry name (default: the architecture)")
    output: str = option("runs", "folder for runs (checkpoints, history, curves)")
    epochs: int = option(40, "passes over the training set")
    batch_size: int = option(64, "faces per training step")
    learning_rate: float = option(1e-3, "peak learning rate (AdamW)", flag="--lr")
    schedule: str = option("cosine", "learning-rate schedule: cosine (after --warmup-epochs of linear warm-up), "
                                     "onecycle (rising from peak/25 over the first 3 tenths of the steps, then a cosine to "
                                     "near 0; ignores --warmup-epochs) or constant", choices=SCHEDULES)
    warmup_epochs: float = option(1.0, "epochs of linear learning-rate warm-up")
    weight_decay: float = option(0.05, "AdamW's decoupled weight decay")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy loss")
    class_weight: str = option("sqrt", f"loss weight per class: {', '.join(CLASS_WEIGHT_MODES)} or JSON per "
                                       "class, e.g. '{\"disgust\": 4}'")
    oversample: float = option(0.0, "repeat rare classes up to this fraction of the largest class (0: off)")
    teacher: str | None = option(None, "distil from a zoo model or 'ensemble' (of --teacher-zoo): its calibrated "
                                       "scores on the training faces join the labels as soft targets", none="none")
    teacher_zoo: str = option("model_zoo", "model zoo the --teacher is read from")
    distill_weight: float = option(0.5, "with --teacher: the teacher's share of each target (the rest: the label)")
    average_last: int = option(0, "also average the weights of the last N epochs (stochastic weight averaging); the "
                                  "mean, batch-norm statistics recomputed, replaces the best epoch if it scores "
                                  "higher on validation (0: off)")
    soup: bool = option(False, "with --average-last and --init-from: also weigh the mean of the run's weight average "
                               "and the weights it started from (a soup of the two, batch-norm statistics "
                               "recomputed); whichever of best epoch, average and soup scores highest on "
                               "validation is kept; may be given on --resume")
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    val_fraction: float = option(0.1, "seeded, stratified validation slice of train (checkpoint selection)")
    seed: int = option(0, "seed of the validation slice, shuffling, augmentation and initial weights")
    weights: str | None = option(None, "initial weights (imagenet needs internet; vgg16 and resnet50v2 only)",
                                 choices=("imagenet",), none="none")
    init_from: str | None = option(None, "start from the weights of a trained model of the same architecture "
                                         "(a .keras file, zoo entry or zoo name): a warm restart")
    strategy: str = option("default", "mirrored: synchronous data-parallel training on every GPU of this machine",
                           choices=STRATEGIES)
    logical_cpus: int = option(0, "split the CPU into N devices, to try --strategy mirrored without GPUs")
    tta: str = option("auto", "test-time augmentation the exported entry is scored with (auto: the best on "
                              "validation); may be changed on --resume", choices=("auto", *TTA_MODES))
    zoo_dir: str = option("model_zoo", "model zoo folder the entry is exported to")
    export: bool = option(True, "export a zoo entry after training (--no-export: train and evaluate only)")

    @property
    def run_name(self) -> str:
        return self.name or self.architecture

    @property
    def run_dir(self) -> Path:
        return Path(self.output) / self.run_name

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        """Refuse, before any data is read or folder written, options the pipeline does not know."""
        from fer.models import architecture

        arch = architecture(self.architecture)
        if self.weights not in (None, "none", *arch.pretrained):
            raise ConfigError(f"{arch.name} has no {self.weights!r} weights: use "
                              f"{', '.join(('none', *arch.pretrained))}.")
        for name, value, allowed in [("schedule", self.schedule, SCHEDULES), ("strategy", self.strategy, STRATEGIES),
                                     ("tta", self.tta, ("auto", *TTA_MODES))]:
            if value not in allowed:
                raise ConfigError(f"Unknown {name} {value!r}: use one of {', '.join(allowed)}.")
        class_weights(np.arange(NUM_CLASSES), self.class_weight)  # parses JSON weights, names the bad ones
        if not 0 <= self.average_last <= self.epochs:
            raise ConfigError(f"--average-last {self.average_last}: use 0 (off) to --epochs ({self.epochs}).")
        if self.soup and not (self.average_last and self.init_from):
            raise ConfigError("--soup mixes the weight average with the starting weights: give --average-last "
                              "and --init-from too.")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ConfigError(f"--distill-weight {self.distill_weight}: use a share between 0 and 1.")
        if self.teacher:
            from fer.zoo import ensemble_members, resolve_model_path

            if self.teacher == "ensemble":  # an unknown teacher is named now, not after the data is read
                ensemble_members(Path(self.teacher_zoo))
            else:
                resolve_model_path(self.teacher, Path(self.teacher_zoo))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["augment"] = AugmentConfig(**d.get("augment", {}))
        return cls(**d)


LOCATIONS = ("data", "output", "zoo_dir")
"""Options that say where files are, not what is trained: a card's reproduce command leaves them out."""


def command_line(config: TrainConfig, data: str | None = None) -> str:
    """The ``python train.py ...`` command that trains ``config``: its architecture and data, then every
    option that differs from its default (where the run and the zoo are written left out)."""
    import shlex

    words = command_args(config, keep=lambda name: name not in ("architecture", *LOCATIONS))
    return shlex.join(["python", "train.py", "--arch", config.architecture, "--data", data or config.data, *words])


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, *, targets: np.ndarray | None = None,
                 augmenter=None, shuffle: bool = False, seed: int = 0, oversample: float = 0.0,
                 pipeline: str = "auto"):
    """Batches of (float 0-255 faces (N,48,48,1), targets (N,7)), augmented on the fly. The targets are the
    one-hot labels, or ``targets`` (soft targets of distillation, see ``distillation_targets``).

    ``pipeline``: ``tf`` (tf.data, augmenting in parallel with training), ``python`` (a
    ``keras.utils.PyDataset``, for backends without TensorFlow such as JAX on a GPU machine) or
    ``auto`` (tf on the TensorFlow backend, python on any other). Both apply the same augmenter.
    """
    import keras

    if pipeline == "auto":
        pipeline = "tf" if keras.backend.backend() == "tensorflow" else "python"
    if pipeline not in ("tf", "python"):
        raise ConfigError(f"Unknown input pipeline {pipeline!r}: use tf, python or auto.")
    if targets is None:
        targets = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    if oversample > 0:
        idx = oversample_indices(labels, oversample, seed)
        images, targets = images[idx], targets[idx]
    targets = np.asarray(targets, dtype=np.float32)
    if pipeline == "python":
        return _array_batches_class()(images, targets, batch_size, augmenter=augmenter, shuffle=shuffle, seed=seed)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, targets))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_model_input(x, y):
        x = tf.cast(x, tf.float32)[..., None]
        if augmenter is not None:
            x = tf.clip_by_value(augmenter(x, training=True), 0.0, 255.0)
        return x, y

    return ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


@functools.cache
def _array_batches_class():  # defined lazily: importing fer.training imports no Keras
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        """Shuffled batches of in-memory faces, augmented with Keras layers on the active backend."""

        def __init__(self, images, targets, batch_size, *, augmenter=None, shuffle=False, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.images, self.targets, self.batch_size = images, targets, batch_size
            self.augmenter, self.shuffle = augmenter, shuffle
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(targets)) if shuffle else np.arange(len(targets))

        def __len__(self):
            return -(-len(self.targets) // self.batch_size)

        def __getitem__(self, index):
            idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            x = self.images[idx].astype(np.float32)[..., None]
            if self.augmenter is not None:
                x = np.clip(keras.ops.convert_to_numpy(self.augmenter(x, training=True)), 0.0, 255.0)
            return x, self.targets[idx]

        def on_epoch_end(self):
            if self.shuffle:
                self.order = self.rng.permutation(len(self.targets))

    return ArrayBatches


TEACHER_FILE = "teacher_targets.npy"  # in a run folder: the teacher's scores on the training faces, for --resume


def distillation_targets(config: TrainConfig, train: Split) -> np.ndarray:
    """Soft targets (N,7) for knowledge distillation (Hinton et al., 2015): ``distill_weight`` of the teacher's
    calibrated probabilities on the (unaugmented) training faces plus the rest of the one-hot label. The
    teacher's scores are computed once and kept in the run folder."""
    from fer.evaluation import score_calibrated

    cached = config.run_dir / TEACHER_FILE
    if cached.exists() and len(scores := np.load(cached)) == len(train.labels):
        log.info("Teacher scores from %s", cached)
    else:
        log.info("Scoring %d training faces with the teacher %s", len(train.labels), config.teacher)
        scores = score_calibrated(config.teacher, train.images, Path(config.teacher_zoo)).calibrated
        np.save(cached, scores.astype(np.float32))
    agreement = float((scores.argmax(1) == train.labels).mean())
    log.info("Teacher agrees with %.1f%% of the training labels; its share of each target: %.2f",
             100 * agreement, config.distill_weight)
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[train.labels]
    return (config.distill_weight * scores + (1 - config.distill_weight) * onehot).astype(np.float32)


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning rate of ``config``: a constant, or a linear warm-up then a cosine decay (per step).

    cosine: ``warmup_epochs`` rising from 1% of the peak, then down to 1% of it. onecycle: the first
    30% of all steps rising from 1/25 of the peak, then down to 1/25,000 of it (fastai's one-cycle shape).
    """
    import keras

    if config.schedule == "constant":
        return config.learning_rate
    if config.schedule not in SCHEDULES:
        raise ConfigError(f"Unknown schedule {config.schedule!r}: use one of {', '.join(SCHEDULES)}.")
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        warmup, start, alpha = int(ONECYCLE_WARMUP * total), ONECYCLE_START, ONECYCLE_START * 1e-3
    else:
        warmup, start, alpha = int(config.warmup_epochs * steps_per_epoch), 0.01, 0.01  # alpha: the end, of the peak
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * start if warmup else config.learning_rate,
        decay_steps=max(1, total - warmup), alpha=alpha,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)


def read_history(history_csv: Path) -> list[dict]:
    """The rows of a run's history.csv, one per finished epoch (none before the first)."""
    if not history_csv.exists():
        return []
    with open(history_csv) as f:
        return list(csv.DictReader(f))


def _best_so_far(history_csv: Path) -> float | None:
    values = [float(r["val_accuracy"]) for r in read_history(history_csv) if r.get("val_accuracy")]
    return max(values) if values else None


def check_new_run(config: TrainConfig) -> None:
    """Refuse a new run where another already is."""
    if (config.run_dir / "config.json").exists():
        raise TrainingError(f"{config.run_dir} already holds a run: pass --resume to continue it, "
                            "or choose another --name / --output.")


def prepare_run_dir(config: TrainConfig, resume: bool) -> None:
    run_dir = config.run_dir
    config_path = run_dir / "config.json"
    if not resume:
        check_new_run(config)
    if not (resume and config_path.exists()):  # on --resume, resumed_config has reconciled the options
        run_dir.mkdir(parents=True, exist_ok=True)
        save_run_config(run_dir, config)


def load_run_config(run_dir: Path) -> TrainConfig:
    return TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))


def save_run_config(folder: Path, config: TrainConfig) -> None:
    """``config`` as ``folder/config.json`` (a run's record, or a zoo entry's), which load_run_config reads."""
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")


AFTER_TRAINING = ("data", "zoo_dir", "tta", "export", "soup")
"""Options that change what happens once training is done (where the data is read from, where the entry goes,
how it is scored), not what is trained: given on ``--resume``, they replace the saved ones (``--data`` only
once every epoch is done: it would change what the remaining epochs train on)."""


LENGTH = ("epochs", "average_last")
"""Options a resumed run at a constant learning rate may change: its rate does not depend on the number of
epochs, so a shorter or longer run trains the same epochs (the averaging window is checked by
``check_new_length``)."""


def resumed_config(run_dir: Path, given: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The saved config of the run in ``run_dir``, with the AFTER_TRAINING options named in ``explicit``
    (those given on this command line) taken from ``given``, and LENGTH's at a constant learning rate. Every
    other option stays as saved, and a warning names each one given with another value."""
    config = load_run_config(run_dir)
    done = len(read_history(run_dir / "history.csv"))
    length = {o: getattr(given, o) for o in LENGTH if o in explicit and getattr(given, o) != getattr(config, o)}
    if config.schedule == "constant" and length:
        config = check_new_length(run_dir, config, replace(config, **length), done)
    finished = done >= config.epochs  # of the length this resume trains to
    for opt in options(TrainConfig):
        saved, now = opt.get(config), opt.get(given)
        if opt.name not in explicit or now == saved:
            continue
        if opt.name not in AFTER_TRAINING:
            log.warning("Resuming %s keeps its saved %s %s (given: %s): only %s may change on --resume.",
                        run_dir, opt.flag, saved, now, ", ".join(f"--{n.replace('_', '-')}" for n in AFTER_TRAINING))
            continue
        if opt.name == "data" and not finished:
            raise ConfigError(f"{run_dir} has epochs left to train on {saved}: resume it without --data, or "
                              "once every epoch is done.")
        log.info("Resuming %s with %s %s (was %s)", run_dir, opt.flag, now, saved)
        setattr(config, opt.name, now)
    return config


def check_new_length(run_dir: Path, config: TrainConfig, new: TrainConfig, done: int) -> TrainConfig:
    """``new`` (``config`` with the --epochs and --average-last given on a resume of a constant-rate run), saved
    as the run's config once it is possible: no fewer epochs than are done, and an averaging window whose epochs can all still be in the
    mean (the mean kept so far starts where the window does, or, with none kept, the window starts no earlier
    than the last finished epoch, whose weights the resume restores)."""
    new.validate()
    if new.epochs < done:
        raise ConfigError(f"{run_dir} has {done} epochs done: --epochs must be at least {done}.")
    if new.average_last:
        first = new.epochs - new.average_last  # 0-based, as the averager counts
        _, kept = read_average(run_dir / AVERAGE_FILE)
        if kept and kept[0] != first or not kept and first < done - 1:
            start = kept[0] if kept else done - 1
            why = (f"the mean kept so far starts at epoch {start + 1}" if kept else
                   f"the weights of the epochs before epoch {start + 1} (the last one done) are gone")
            raise ConfigError(
                f"--epochs {new.epochs} --average-last {new.average_last} averages from epoch {first + 1}, but "
                f"{why}: choose a window that starts at epoch {start + 1} (--average-last {new.epochs - start}).")
        if not kept and new.epochs <= done:
            raise ConfigError(f"{run_dir} has no epoch left to train, so its mean cannot start now: --epochs must "
                              f"be more than {done} to average.")
    log.info("Resuming %s at a constant learning rate with --epochs %d --average-last %d (was %d, %d)", run_dir,
             new.epochs, new.average_last, config.epochs, config.average_last)
    save_run_config(run_dir, new)  # what later resumes read
    return new


HARDWARE_FILE = "hardware.txt"  # in a run folder: what it trained on, for the model card


def distribution_strategy(name: str, logical_cpus: int = 0):
    """The distribution strategy models are built under, as a function that returns a new context manager of it
    at each call (a strategy's scope can be entered once per context manager).

    ``mirrored``: synchronous data parallelism, one replica per GPU (or per logical CPU device when
    there is no GPU): ``tf.distribute.MirroredStrategy`` on TensorFlow, ``keras.distribution.DataParallel``
    on JAX. Batches are global: each of N replicas gets batch_size / N faces a step.
    """
    import contextlib

    import keras

    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}.")
    if keras.backend.backend() == "jax":
        if name == "mirrored":
            keras.distribution.set_distribution(keras.distribution.DataParallel())
            log.info("Data parallel (JAX) over %d devices", len(keras.distribution.list_devices()))
        return contextlib.nullcontext
    import tensorflow as tf

    if logical_cpus > 1:
        try:
            tf.config.set_logical_device_configuration(
                tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        except RuntimeError:
            raise ConfigError("--logical-cpus must be set before TensorFlow starts: use it from train.py.") from None
    if name == "default":
        return contextlib.nullcontext
    devices = [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    log.info("MirroredStrategy: %d replicas in sync (%s)", strategy.num_replicas_in_sync, ", ".join(devices))
    return strategy.scope


def load_initial_weights(model, source: str) -> str:
    """Start ``model`` from the weights of a trained network of the same architecture (a warm restart); returns
    their fingerprint (a sha256 of the arrays).

    ``source`` is a .keras file, a zoo entry folder or a zoo name; a zoo entry holds the bare network.
    """
    from fer.zoo import load_network

    trained = load_network(source)
    if trained.name != model.name:
        raise TrainingError(f"--init-from {source}: holds a {trained.name} network, not {model.name}: "
                            f"start from a {model.name} model.")
    weights = trained.get_weights()
    try:
        model.set_weights(weights)
    except ValueError as e:
        raise TrainingError(f"--init-from {source}: its weights do not fit {model.name} ({e}).") from None
    log.info("Initial weights from %s", source)
    return weights_fingerprint(weights)


def weights_fingerprint(weights: list[np.ndarray]) -> str:
    """A sha256 of a network's weight arrays, in order."""
    digest = hashlib.sha256()
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def stream_seed(seed: int, start: str | None, epochs_done: int) -> int:
    """The seed of a run's shuffling, oversampling and augmentation from its ``epochs_done``-th epoch on.

    ``seed`` itself for a run from scratch at its first epoch. Otherwise mixed with ``start`` (the fingerprint
    of the weights a warm restart starts from, see load_initial_weights) and the epochs done: with the seed
    alone, every warm restart replays the cycle before it batch for batch, augmentation included, and a
    resumed run replays its first epoch, so a network meets the same augmented faces again (and its training
    accuracy counts what it remembers). ``--seed`` cannot vary instead: it also cuts the validation slice.
    """
    if start is None and epochs_done == 0:
        return seed
    digest = hashlib.sha256(f"{seed}/{start}/{epochs_done}".encode()).digest()
    return int.from_bytes(digest[:4], "little") >> 1  # a non-negative int32, as TensorFlow's seeds must be


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


def _progress_log_class():
    import keras

    class ProgressLog(keras.callbacks.Callback):
        """For a run whose output goes to a log file (Keras prints its progress bar only to a terminal): a line
        at each tenth of an epoch, with the faces per second and the time left, at most one per ``every``
        seconds. An epoch of ResNet50V2 takes 10-40 minutes on CPU; without this the log is silent meanwhile."""

        async_safe = True  # reads no logs (no values from the device), so JAX's asynchronous dispatch stays on

        def __init__(self, batch_size: int, every: float = 60.0):
            super().__init__()
            self.batch_size, self.every = batch_size, every

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.start = epoch, time.time()
            self.last, self.tenth = self.start, 0

        def on_train_batch_end(self, batch, logs=None):
            steps, done, now = self.params.get("steps"), batch + 1, time.time()
            if not steps or done >= steps or done * 10 // steps <= self.tenth or now - self.last < self.every:
                return
            self.tenth, self.last, elapsed = done * 10 // steps, now, now - self.start
            log.info("Epoch %d/%d: %d%% (%d/%d steps) in %s, %.0f faces/s, about %s to go", self.epoch + 1,
                     self.params["epochs"], 100 * done // steps, done, steps, _minutes(elapsed),
                     done * self.batch_size / elapsed, _minutes(elapsed * (steps - done) / done))

    return ProgressLog


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


AVERAGE_FILE, AVERAGE_RECORD = "average.npz", "average.json"
"""In a run folder: the running mean of the weights (with the epochs it holds) and what choosing it measured."""


def _weight_averager_class():
    import keras

    class WeightAverager(keras.callbacks.Callback):
        """The running mean of the weights after each epoch from ``first_epoch`` (0-based) on: stochastic weight
        averaging (Izmailov et al., 2018). Kept in ``path`` every epoch, so a resumed run goes on averaging
        where it stopped; an epoch already in the mean is not added twice."""

        def __init__(self, path: Path, first_epoch: int):
            super().__init__()
            self.path, self.first_epoch = path, first_epoch

        def on_train_begin(self, logs=None):
            self.mean, self.epochs = read_average(self.path)  # read once; kept in memory from here on
            self.starting = True

        def on_epoch_begin(self, epoch, logs=None):
            # A resume whose window now takes in the last finished epoch (--average-last raised on --resume):
            # the weights the backup has restored are that epoch's.
            if self.starting:
                self.starting = False
                self.on_epoch_end(epoch - 1)

        def on_epoch_end(self, epoch, logs=None):
            if epoch < self.first_epoch or epoch in self.epochs:
                return
            weights = [np.asarray(w, dtype=np.float64) for w in self.model.get_weights()]
            n = len(self.epochs)
            self.mean = weights if not n else [m + (w - m) / (n + 1) for m, w in zip(self.mean, weights)]
            self.epochs = [*self.epochs, epoch]
            tmp = self.path.with_name(self.path.name + ".tmp.npz")
            np.savez(tmp, epochs=np.array(self.epochs), **{f"w{i}": m for i, m in enumerate(self.mean)})
            tmp.replace(self.path)

    return WeightAverager


def read_average(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """The mean weights an averaging run has kept, and the (0-based) epochs in it; ([], []) before the first."""
    if not path.exists():
        return [], []
    with np.load(path) as f:
        return [f[f"w{i}"] for i in range(len(f.files) - 1)], [int(e) for e in f["epochs"]]


def _batch_norm_layers(layer) -> list:
    import keras

    found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
    for inner in getattr(layer, "layers", []):
        found += _batch_norm_layers(inner)
    return found


def recompute_batch_norm(model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set every batch-norm layer's moving mean and variance to their means over the batches of ``images``
    (unaugmented), as the averaged weights compute them: a mean of weights is not trained with the
    statistics of any one epoch. Returns the number of batches (0: the model has no batch norm)."""
    layers = _batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    batches = make_dataset(images, np.zeros(len(images), dtype=int), batch_size, pipeline="python")
    try:
        for i in range(len(batches)):
            for layer in layers:  # the cumulative mean: batch i counts 1/(i+1)
                layer.momentum = i / (i + 1)
            model(batches[i][0], training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(batches)


START_FILE = "start_fingerprint.txt"
"""In a warm restart's run folder: the sha256 of the weights it started from (weights_fingerprint)."""

KEPT = {"best_epoch": "best.keras", "average": "average.keras", "soup": "soup.keras"}
"""What a run with --average-last may keep, and the file in its folder that holds it (the order breaks ties)."""


def mean_weights_model(architecture: str, weights: list[np.ndarray], images: np.ndarray):
    """A network of ``architecture`` with ``weights`` (a mean of others'), its batch-norm statistics recomputed."""
    from fer.models import build_model

    model = build_model(architecture)
    model.set_weights([w.astype(m.dtype) for w, m in zip(weights, model.get_weights())])
    recompute_batch_norm(model, images)
    return model


def better_of_best_and_average(config: TrainConfig, dataset: Dataset, best):
    """``best`` (the best epoch) or the run's mean weights, whichever scores more validation faces right (the best
    epoch on a tie); with --soup also the mean of those and the weights the run started from (--init-from), kept
    only where it scores more than both. Writes ``average.keras`` (and ``soup.keras``) and the comparison to
    ``average.json`` in the run folder."""
    from fer.evaluation import evaluate_model
    from fer.zoo import load_network

    run_dir = config.run_dir
    mean, epochs = read_average(run_dir / AVERAGE_FILE)
    if len(epochs) < 2:
        log.info("Weight average: %d epoch(s) averaged, nothing to compare", len(epochs))
        return best
    candidates = {"best_epoch": best,
                  "average": mean_weights_model(config.architecture, mean, dataset.train.images)}
    if config.soup:
        start = load_network(config.init_from).get_weights()
        recorded = (run_dir / START_FILE).read_text().strip() if (run_dir / START_FILE).exists() else None
        if recorded and weights_fingerprint(start) != recorded:
            raise TrainingError(f"--soup: {config.init_from} no longer holds the weights this run started from "
                                "(replaced by an export since?): soup with those weights by `python -m fer zoo soup`.")
        candidates["soup"] = mean_weights_model(config.architecture, [(m + s) / 2 for m, s in zip(mean, start)],
                                                 dataset.train.images)
    scores = {}
    for name, model in candidates.items():
        if name != "best_epoch":
            model.save(run_dir / KEPT[name])
        scores[name] = evaluate_model(model, dataset.val).accuracy
    chosen = max(scores, key=lambda name: (scores[name], -list(KEPT).index(name)))
    record = {"epochs": [e + 1 for e in epochs], "validation_accuracy": scores, "chosen": chosen}
    (run_dir / AVERAGE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    log.info("Weight average of epochs %d-%d: validation %s -> %s", epochs[0] + 1, epochs[-1] + 1,
             ", ".join(f"{name} {score:.4f}" for name, score in scores.items()), chosen)
    return candidates[chosen]


def describe_cpu() -> str:
    import os

    return f"a {os.cpu_count()}-core CPU"


def describe_hardware() -> str:
    """The accelerator Keras trains on here, in words ("one NVIDIA H100 80GB HBM3 GPU"), else the CPU."""
    import keras

    names = []
    if keras.backend.backend() == "jax":
        import jax

        names = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        names = [tf.config.experimental.get_device_details(d).get("device_name", "GPU")
                 for d in tf.config.list_physical_devices("GPU")]
    if names:
        count = "one" if len(names) == 1 else str(len(names))
        return f"{count} {names[0]} GPU{'s' if len(names) > 1 else ''}"
    return describe_cpu()


def epochs_done(history_csv: Path) -> int:
    return len(read_history(history_csv))


def training_seconds(history_csv: Path) -> float:
    """Total seconds of the epochs recorded in history.csv (across resumes)."""
    return sum(float(r.get("epoch_seconds") or 0) for r in read_history(history_csv))


def fit(config: TrainConfig, dataset: Dataset, resume: bool = False):
    """Train (or resume) the run; returns the best-on-validation model."""
    import keras

    scope = distribution_strategy(config.strategy, config.logical_cpus)  # before anything starts TensorFlow
    keras.utils.set_random_seed(config.seed)
    from fer.augment import build_augmenter
    from fer.models import build_model

    EpochTimer = _epoch_timer_class()
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh run never inherits a stale backup or history
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        for stale in ("history.csv", AVERAGE_FILE, AVERAGE_RECORD, "average.keras", "soup.keras", START_FILE):
            (run_dir / stale).unlink(missing_ok=True)
    elif (done := epochs_done(run_dir / "history.csv")) >= config.epochs and (run_dir / "best.keras").exists():
        # A finished run (trained elsewhere, say, and copied here without its backup): evaluate and export it.
        log.info("%s has trained all %d epochs: evaluating and exporting it", run_dir, config.epochs)
        return _trained_model(config, dataset)
    elif done and not (run_dir / "backup").is_dir():
        raise TrainingError(f"{run_dir} stopped after {done} of {config.epochs} epochs "
                         f"and has no backup/ to resume from: start a new cycle from its best epoch with "
                         f"--init-from {run_dir / 'best.keras'}")
    (run_dir / HARDWARE_FILE).write_text(describe_hardware() + "\n")
    weights = class_weights(dataset.train.labels, config.class_weight)
    log.info("Class weights (%s): %s", config.class_weight, format_class_weights(weights))
    with scope():  # variables (weights, optimizer slots) live on every replica
        model = build_model(config.architecture, weights=config.weights)
        start = load_initial_weights(model, config.init_from) if config.init_from else None
    if start and not (run_dir / START_FILE).exists():  # what --soup checks the starting weights against
        (run_dir / START_FILE).write_text(start + "\n")
    stream = stream_seed(config.seed, start, epochs_done(run_dir / "history.csv") if resume else 0)
    keras.utils.set_random_seed(stream)  # the augmenter's layers draw their seeds from it
    augmenter = build_augmenter(config.augment)
    targets = distillation_targets(config, dataset.train) if config.teacher else None
    train_ds = make_dataset(dataset.train.images, dataset.train.labels, config.batch_size, targets=targets,
                            augmenter=augmenter, shuffle=True, seed=stream, oversample=config.oversample)
    val_ds = make_dataset(dataset.val.images, dataset.val.labels, 256)
    steps_per_epoch = len(train_ds)

    with scope():
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate_schedule(config, steps_per_epoch),
                                             weight_decay=config.weight_decay),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
            # XLA is slower than the plain kernels on CPU with TensorFlow; JAX needs it (eager JAX is very slow).
            jit_compile=keras.backend.backend() != "tensorflow",
        )
    callbacks = [EpochTimer()]
    if not sys.stdout.isatty():  # Keras's progress bar is for a terminal; a log file gets a line per tenth
        callbacks.append(_progress_log_class()(config.batch_size))
    if config.average_last:  # before the backup: an epoch the backup holds is always in the mean
        callbacks.append(_weight_averager_class()(run_dir / AVERAGE_FILE, config.epochs - config.average_last))
    callbacks += [
        # Saves weights + optimizer state every epoch; restores them on --resume.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_accuracy", mode="max",
                                        save_best_only=True,
                                        initial_value_threshold=_best_so_far(run_dir / "history.csv")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, class_weight=weights,
              callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    return _trained_model(config, dataset)


def _trained_model(config: TrainConfig, dataset: Dataset):
    """The run's best epoch, or with --average-last its weight average where that scores higher on validation."""
    import keras

    # compile=False: the exported model carries weights only, not the optimizer's state.
    best = keras.saving.load_model(config.run_dir / "best.keras", safe_mode=True, compile=False)
    return better_of_best_and_average(config, dataset, best) if config.average_last else best
