"""Training on the GPU machine: JAX, the faces resident on the device, augmentation inside the compiled step.

    pack (fer.device_files) -> uint8 faces on the device -> per epoch a permutation, then per batch one
    compiled step: gather, augmentation (fer.device_augment), ``stateless_call`` and the optimizer's
    ``stateless_apply`` -> validation -> checkpoint (runs/<name>/checkpoint.npz) -> $OUT

At most every ``save_every`` seconds and when a command ends, the best-on-validation weights (float16
shards) and the report go to $OUT, and the whole state (weights, optimizer, best weights, report) to the
run folder, which stays on the device between commands while the machine is held: ``--resume`` continues
from it. Validation accuracy is that of the
float16 weights computed in float32, so it is the number reassembly (fer.device_host) finds again.

Imports numpy, JAX and Keras on the JAX backend; never TensorFlow, OpenCV or scikit-learn, which the
device does not need to have.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer.augment import class_weights, oversample_indices
from fer.device_files import DeviceConfig, DeviceRunError, Pack, RunReport, read_pack, write_shards
from fer.labels import IMAGE_SIZE, NUM_CLASSES
from fer.training import SCHEDULES, TrainConfig, describe_hardware, learning_rate_schedule

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.npz"
EVAL_BATCH = 512
UNSUPPORTED = {  # TrainConfig options the device trainer leaves at their defaults, and why
    "weights": "the device cannot download ImageNet weights",
    "init_from": "warm restarts are trained here (train.py --init-from)",
    "strategy": "the device trainer uses one accelerator",
    "logical_cpus": "the device trainer uses one accelerator",
    "teacher": "the pack carries no teacher scores (distil with train.py)",
    "average_last": "weight averaging is trained here (train.py --average-last)",
    "soup": "a soup mixes a weight average with a warm restart's start, both trained here (train.py --soup)",
}


def require_jax():
    """The ``keras`` module, refusing any backend but JAX."""
    import keras

    if keras.backend.backend() != "jax":
        raise DeviceRunError(f"The device trainer needs Keras on JAX, not {keras.backend.backend()}: "
                             "set KERAS_BACKEND=jax before Python starts.")
    return keras


@dataclass
class State:
    """Everything a step changes: the model's trainable and other variables, and the optimizer's."""

    trainable: list
    non_trainable: list
    optimizer: list

    PARTS = ("trainable", "non_trainable", "optimizer")

    def parts(self) -> tuple[list, list, list]:
        return self.trainable, self.non_trainable, self.optimizer

    def arrays(self) -> dict[str, np.ndarray]:
        """Every value, named ``<part>_<index>``, as numpy arrays (for a checkpoint)."""
        return {f"{part}_{i}": np.asarray(v) for part in self.PARTS for i, v in enumerate(getattr(self, part))}


def compute_policy(precision: str) -> str:
    """The Keras dtype policy for ``precision``: auto is bfloat16 (mixed) on a GPU, float32 elsewhere."""
    import jax

    if precision == "auto":
        precision = "bfloat16" if jax.default_backend() == "gpu" else "float32"
    return {"bfloat16": "mixed_bfloat16", "float32": "float32"}[precision]


def build(architecture: str, policy: str):
    """``fer.models.build_model(architecture)`` under dtype policy ``policy``."""
    keras = require_jax()
    from fer.models import build_model

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build_model(architecture)
    finally:
        keras.config.set_dtype_policy(previous)


def make_optimizer(config: TrainConfig, device_config: DeviceConfig):
    """AdamW, or SGD with Nesterov momentum, with ``config``'s weight decay. Its learning rate is a variable
    that each training step sets (see make_train_step), so the schedule can be re-planned without compiling
    the step again."""
    keras = require_jax()
    if device_config.optimizer == "adamw":
        return keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay)
    if device_config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=device_config.momentum, nesterov=True,
                                    weight_decay=config.weight_decay)
    raise DeviceRunError(f"Unknown optimizer {device_config.optimizer!r}: use adamw or sgd.")


def learning_rate_index(optimizer) -> int:
    """Where the learning rate lies among ``optimizer.variables`` (and so in a State's optimizer part)."""
    names = [v.name for v in optimizer.variables]
    if "learning_rate" not in names:
        raise DeviceRunError(f"{type(optimizer).__name__} keeps no learning_rate variable in this Keras version.")
    return names.index("learning_rate")


def fitted_epochs(done: int, asked: int, seconds_left: float, seconds_per_epoch: float) -> int:
    """How many epochs a run plans when ``done`` are done, each takes ``seconds_per_epoch`` and
    ``seconds_left`` remain: as many as fit, at most ``asked`` and never fewer than ``done``."""
    return min(asked, max(done, done + int(seconds_left // seconds_per_epoch)))


def make_train_step(model, optimizer, config: TrainConfig, device_config: DeviceConfig):
    """A jitted ``(state, totals, images, labels, order, i, class_weights, key, rates) -> (state, totals)``:
    the ``i``-th batch of ``order`` (steps, batch) gathered from the resident uint8 faces, augmented, and one
    forward and backward pass and optimizer update at learning rate ``rates[i]``; ``totals`` adds up (loss,
    correct faces) on the device.

    The loss is Keras's categorical cross-entropy (with label smoothing) weighted per face by its class
    weight, as ``fit(class_weight=...)`` weighs it. Called once per batch: the host only queues the steps
    (a ``lax.scan`` over an epoch runs many times slower on XLA's CPU backend).
    """
    import jax
    import jax.numpy as jnp

    keras = require_jax()
    from fer.device_augment import augment_batch, mix_batch

    def loss_fn(trainable, non_trainable, x, targets, weights):
        scores, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        scores = scores.astype(jnp.float32)
        losses = keras.losses.categorical_crossentropy(targets, scores, label_smoothing=config.label_smoothing)
        return (losses * weights).mean(), (non_trainable, scores)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    lr_index = learning_rate_index(optimizer)

    def step(state, totals, images, labels, order, i, cw, key, rates):
        trainable, non_trainable, optimizer_vars = state
        optimizer_vars = list(optimizer_vars)
        optimizer_vars[lr_index] = rates[i].astype(optimizer_vars[lr_index].dtype)
        augment_key, mix_key = jax.random.split(jax.random.fold_in(key, i))
        x = augment_batch(augment_key, images[order[i]], config.augment, device_config.erasing)
        targets = jax.nn.one_hot(labels[order[i]], NUM_CLASSES)
        if device_config.mixup:
            x, targets = mix_batch(mix_key, x, targets, device_config.mixup)
        (loss, (non_trainable, scores)), grads = grad_fn(trainable, non_trainable, x[..., None], targets,
                                                         targets @ cw)
        trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
        correct = jnp.sum(jnp.argmax(scores, -1) == jnp.argmax(targets, -1))
        return (trainable, non_trainable, optimizer_vars), totals + jnp.stack([loss, correct])

    return jax.jit(step, donate_argnums=(0, 1))


def make_epoch_order(steps: int, batch_size: int):
    """A jitted ``(key, indices) -> (steps, batch_size)``: an epoch's batches, drawn without replacement
    (the faces left over after the last whole batch wait for another epoch)."""
    import jax

    def order(key, indices):
        return jax.random.permutation(key, indices)[:steps * batch_size].reshape(steps, batch_size)

    return jax.jit(order)


def make_evaluate(model, label_smoothing: float):
    """A jitted ``(trainable, non_trainable, images, labels) -> (loss, accuracy, float16 variables)``.

    The variables are rounded to float16 first, as they travel back, and ``model`` is built in float32:
    the accuracy is the one the reassembled model has on this machine.
    """
    import jax
    import jax.numpy as jnp

    keras = require_jax()

    def to_float16(values):
        return [v.astype(jnp.float16) if jnp.issubdtype(v.dtype, jnp.floating) else v for v in values]

    def evaluate(trainable, non_trainable, images, labels):
        trainable, non_trainable = to_float16(trainable), to_float16(non_trainable)
        n, batch = images.shape[0], min(EVAL_BATCH, images.shape[0])
        padded = jnp.pad(images, ((0, -n % batch), (0, 0), (0, 0)))
        batches = padded.reshape(-1, batch, *images.shape[1:])

        def scores_of(x):
            weights = [v.astype(jnp.float32) if v.dtype == jnp.float16 else v for v in trainable]
            others = [v.astype(jnp.float32) if v.dtype == jnp.float16 else v for v in non_trainable]
            return model.stateless_call(weights, others, x[..., None].astype(jnp.float32), training=False)[0]

        scores = jax.lax.map(scores_of, batches).reshape(-1, NUM_CLASSES)[:n]
        targets = jax.nn.one_hot(labels, NUM_CLASSES)
        loss = keras.losses.categorical_crossentropy(targets, scores, label_smoothing=label_smoothing).mean()
        return loss, (jnp.argmax(scores, -1) == labels).mean(), trainable, non_trainable

    jitted = jax.jit(evaluate)

    def evaluate_in_float32(*args):
        with jax.default_matmul_precision("float32"):  # no TF32 on the GPU: the numbers this CPU finds
            return jitted(*args)

    return evaluate_in_float32


def adopt_pack(config: TrainConfig, meta: dict) -> TrainConfig:
    """``config`` with the pack's data, validation fraction and seed, which made the pack's split; a
    different value given on the command line is refused."""
    defaults = TrainConfig()
    for name in ("data", "val_fraction", "seed"):
        given, packed = getattr(config, name), meta[name]
        if given != getattr(defaults, name) and given != packed:
            raise DeviceRunError(f"--{name.replace('_', '-')} {given} differs from the pack's {packed}: pack "
                                 "again with it, or leave it out (the pack decides).")
    return dataclasses.replace(config, data=meta["data"], val_fraction=meta["val_fraction"], seed=meta["seed"])


def check_supported(config: TrainConfig, device_config: DeviceConfig) -> None:
    """Refuse options the device trainer does not implement."""
    defaults = TrainConfig()
    for name, why in UNSUPPORTED.items():
        if getattr(config, name) != getattr(defaults, name):
            raise DeviceRunError(f"--{name.replace('_', '-')} is not available on the device ({why}): leave it out.")
    if config.schedule not in SCHEDULES:
        raise DeviceRunError(f"Unknown schedule {config.schedule!r}: use one of {', '.join(SCHEDULES)}.")
    from fer.models import architecture

    architecture(config.architecture)  # refuses unknown names


def train_class_weights(pack: Pack, mode: str) -> np.ndarray:
    """The class weights of ``mode``: named modes as the pack computed them, JSON ones parsed here."""
    if mode in pack.meta["class_weights"]:
        return np.asarray(pack.meta["class_weights"][mode], np.float32)
    weights = class_weights(pack.train_labels, mode)  # a JSON object: parsed without scikit-learn
    return np.asarray([weights[c] for c in range(NUM_CLASSES)], np.float32)


def run_options(config: TrainConfig, device_config: DeviceConfig, pack_meta: dict, run_dir: Path,
                resume: bool) -> tuple[TrainConfig, DeviceConfig]:
    """The options a run trains with: on ``resume`` those it was started with (saved in its checkpoint),
    else the given ones with the pack's data, validation slice and seed."""
    checkpoint = run_dir / CHECKPOINT_FILE
    if checkpoint.exists() and not resume:
        raise DeviceRunError(f"{run_dir} already holds a run: pass --resume to continue it, or another --name.")
    if resume and not checkpoint.exists():
        raise DeviceRunError(f"Nothing to resume in {run_dir} (a fresh machine has no runs): start again "
                             "without --resume, or reassemble the files fetched last with --partial.")
    config = adopt_pack(config, pack_meta)
    if resume:
        saved = read_checkpoint_report(run_dir)
        if saved.pack["val_digest"] != pack_meta["val_digest"]:
            raise DeviceRunError(f"{run_dir} was trained on another pack: carry the pack it started with, or "
                                 "start over without --resume.")
        if (saved.train_config, saved.device_config) != (config.to_dict(), device_config.to_dict()):
            log.warning("Resuming %s with the options it was started with; the ones given now are ignored.", run_dir)
        config, device_config = TrainConfig.from_dict(saved.train_config), DeviceConfig(**saved.device_config)
    check_supported(config, device_config)
    return config, device_config


class DeviceTrainer:
    """One run's model, optimizer, compiled training step and validation, with the faces on the device."""

    def __init__(self, config: TrainConfig, device_config: DeviceConfig, pack: Pack):
        import jax

        keras = require_jax()
        self.config, self.policy = config, compute_policy(device_config.precision)
        keras.utils.set_random_seed(config.seed)
        self.model, eval_model = build(config.architecture, self.policy), build(config.architecture, "float32")
        indices = (oversample_indices(pack.train_labels, config.oversample, config.seed) if config.oversample > 0
                   else np.arange(len(pack.train_labels)))
        self.steps = len(indices) // config.batch_size
        if self.steps == 0:
            raise DeviceRunError(f"--batch-size {config.batch_size} is larger than the {len(indices)} training faces.")
        self.optimizer = make_optimizer(config, device_config)
        self.optimizer.build(self.model.trainable_variables)
        self.train_data = [jax.device_put(a) for a in (pack.train_images, pack.train_labels, indices.astype(np.int32),
                                                        train_class_weights(pack, config.class_weight))]
        self.val_data = [jax.device_put(a) for a in (pack.val_images, pack.val_labels)]
        self.key = jax.random.key(config.seed)
        self._order = make_epoch_order(self.steps, config.batch_size)
        self._step = make_train_step(self.model, self.optimizer, config, device_config)
        self._evaluate = make_evaluate(eval_model, config.label_smoothing)
        self._schedules = {}  # planned epochs -> the compiled schedule of one epoch's steps

    def epoch_rates(self, epoch: int, planned_epochs: int) -> np.ndarray:
        """The learning rate of each step of ``epoch``: train.py's schedule (fer.training.learning_rate_schedule)
        laid over ``planned_epochs``, computed on the host's CPU (compiled once per plan; op by op, a
        schedule takes about 50 ms a step)."""
        import jax
        import jax.numpy as jnp

        schedule = learning_rate_schedule(dataclasses.replace(self.config, epochs=planned_epochs), self.steps)
        if not callable(schedule):
            return np.full(self.steps, schedule, np.float32)
        with jax.default_device(jax.devices("cpu")[0]):
            if planned_epochs not in self._schedules:
                self._schedules[planned_epochs] = jax.jit(jax.vmap(schedule))
            steps = jnp.arange(epoch * self.steps, (epoch + 1) * self.steps)
            return np.asarray(self._schedules[planned_epochs](steps), np.float32)

    @property
    def faces_per_epoch(self) -> int:
        return self.steps * self.config.batch_size

    def initial_state(self) -> State:
        return State([v.value for v in self.model.trainable_variables],
                     [v.value for v in self.model.non_trainable_variables],
                     [v.value for v in self.optimizer.variables])

    def compile(self, state: State) -> float:
        """Compile the training step and the validation for ``state``'s shapes; returns the seconds it took."""
        import jax.numpy as jnp

        start = time.monotonic()
        images, labels, indices, cw = self.train_data
        order = self._order(self.key, indices)
        # Ahead of time, so that the first epoch's time is training only; later calls find it compiled.
        self._step.lower(state.parts(), jnp.zeros(2), images, labels, order, np.int32(0), cw, self.key,
                         self.epoch_rates(0, self.config.epochs)).compile()
        self._evaluate(state.trainable, state.non_trainable, *self.val_data)
        return time.monotonic() - start

    def train_epoch(self, state: State, epoch: int, planned_epochs: int) -> tuple[State, float, float]:
        """One epoch (its randomness: the seed and the epoch number) of a run planned to last ``planned_epochs``;
        returns (state, loss, accuracy)."""
        import jax
        import jax.numpy as jnp

        images, labels, indices, cw = self.train_data
        order_key, step_key = jax.random.split(jax.random.fold_in(self.key, epoch))
        order = self._order(order_key, indices)
        rates = jax.device_put(self.epoch_rates(epoch, planned_epochs))
        parts, totals = state.parts(), jnp.zeros(2)
        for i in range(self.steps):
            parts, totals = self._step(parts, totals, images, labels, order, np.int32(i), cw, step_key, rates)
        loss_sum, correct = np.asarray(totals)  # waits for the epoch
        return State(*parts), float(loss_sum / self.steps), float(correct / self.faces_per_epoch)

    def validate(self, state: State) -> tuple[float, float, list[tuple[str, np.ndarray]]]:
        """(loss, accuracy) on the validation faces of the float16-rounded weights, and those weights."""
        loss, accuracy, trainable, non_trainable = self._evaluate(state.trainable, state.non_trainable,
                                                                   *self.val_data)
        return float(loss), float(accuracy), named_weights(self.model, trainable, non_trainable)


def train(config: TrainConfig, device_config: DeviceConfig, pack_dir: Path, out_dir: Path, *,
          resume: bool = False, time_budget: float = 510.0, started: float | None = None,
          save_every: float = 60.0) -> RunReport:
    """Train (or continue) the run in ``config.run_dir`` from the pack in ``pack_dir``; returns the report,
    which is also in ``out_dir`` beside the best weights.

    Stops before an epoch that would end more than ``time_budget`` seconds after ``started`` (judged by
    the longest epoch so far; the first epoch of a command always runs). With ``device_config.fit_epochs``
    the run plans instead, after each epoch, as many epochs as fit in what is left of the budget at this
    command's mean epoch (at most ``config.epochs``) and the plan alone ends it (the longest epoch would
    judge the last planned epoch by another measure and stop one short of the plan); its learning-rate
    schedule follows the plan: the report's ``train_config`` holds the plan, ``epochs_asked`` the epochs
    asked for. Its last epoch may end past the budget by what it takes over the mean: the default budget
    leaves 90 s of the 10-minute limit for that. The checkpoint and ``out_dir`` are
    written at most once every ``save_every`` seconds and when the command ends: on a GPU an epoch takes a
    second or two, and writing hundreds of MB after each would cost more than the epoch.
    """
    import jax

    started = time.monotonic() if started is None else started
    keras = require_jax()
    pack = read_pack(pack_dir)
    run_dir, out_dir = config.run_dir, Path(out_dir)
    config, device_config = run_options(config, device_config, pack.meta, run_dir, resume)
    trainer = DeviceTrainer(config, device_config, pack)
    state, best, report = start_run(trainer, device_config, pack.meta, run_dir, resume)
    report.device, report.hardware = jax.devices()[0].device_kind, describe_hardware()
    report.versions = {"keras": keras.__version__, "jax": jax.__version__}
    log.info("%s on %s (%s), batch %d, %s, %d steps an epoch", config.architecture, report.hardware,
             trainer.policy, config.batch_size, device_config.optimizer, trainer.steps)
    report.compile_seconds = round(trainer.compile(state), 2)
    log.info("Compiled in %.1f s", report.compile_seconds)
    if best:  # $OUT starts empty on every command
        publish(out_dir, report, best)
    first, longest, train_seconds = report.epochs_done, 0.0, 0.0
    asked, planned = report.epochs_asked or config.epochs, report.train_config["epochs"]
    saved_at, unsaved, unpublished = time.monotonic(), False, False
    epochs_start = time.monotonic()
    try:
        for epoch in itertools.count(first):
            if epoch > first and device_config.fit_epochs:
                fitted = fitted_epochs(epoch, asked, time_budget - (time.monotonic() - started),
                                       (time.monotonic() - epochs_start) / (epoch - first))
                if fitted != planned:
                    planned = fitted
                    report.train_config["epochs"], report.epochs_asked = planned, asked if planned != asked else 0
                    log.info("Planned %d epochs, of the %d asked, to end inside the %.0f s time budget", planned,
                             asked, time_budget)
            if epoch >= planned:
                break
            if epoch > first and not device_config.fit_epochs and time.monotonic() - started + longest > time_budget:
                log.info("Stopping after epoch %d of %d: another would pass the %.0f s time budget. Run the same "
                         "command with --resume to continue.", epoch, planned, time_budget)
                break
            epoch_start = time.monotonic()
            trained, loss, accuracy = trainer.train_epoch(state, epoch, planned)
            step_seconds = time.monotonic() - epoch_start
            val_loss, val_accuracy, weights = trainer.validate(trained)
            compiling = report.compile_seconds if epoch == first else 0.0  # the cost of the command, counted once
            improved = report.record_epoch({"epoch": epoch, "accuracy": accuracy, "loss": loss,
                                            "val_accuracy": val_accuracy, "val_loss": val_loss,
                                            "epoch_seconds": round(time.monotonic() - epoch_start + compiling, 2)})
            state, best = trained, weights if improved else best  # the epoch counts from here on
            unsaved, unpublished = True, unpublished or improved
            train_seconds += step_seconds
            report.faces_per_second = round(trainer.faces_per_epoch * (epoch + 1 - first) / train_seconds, 1)
            log.info(progress_line(report, trainer.faces_per_epoch / step_seconds))
            if time.monotonic() - saved_at >= save_every:
                save_run(run_dir, out_dir, state, best if unpublished else None, best, report)
                saved_at, unsaved, unpublished = time.monotonic(), False, False
            longest = max(longest, time.monotonic() - epoch_start)
    finally:  # the epochs done so far are kept whichever way the command ends
        if unsaved:
            save_run(run_dir, out_dir, state, best if unpublished else None, best, report)
    if report.finished:
        log.info("Finished all %d epochs: best validation accuracy %.4f (epoch %d). Fetch $OUT and reassemble.",
                 planned, report.best_val_accuracy, report.best_epoch + 1)
    return report


def start_run(trainer: DeviceTrainer, device_config: DeviceConfig, pack_meta: dict, run_dir: Path,
              resume: bool) -> tuple[State, list[tuple[str, np.ndarray]], RunReport]:
    """The state to train from, the best weights so far and the report: the checkpoint's on ``resume``,
    else a fresh model's, none and an empty report."""
    state = trainer.initial_state()
    if resume:
        state, best, report = load_checkpoint(run_dir, state, weight_names(trainer.model))
        log.info("Resuming %s at epoch %d of %d", run_dir, report.epochs_done + 1, trainer.config.epochs)
        return state, best, report
    run_dir.mkdir(parents=True, exist_ok=True)
    config = trainer.config
    return state, [], RunReport(config.run_name, config.to_dict(), device_config.to_dict(), pack_meta,
                                device="", hardware="", precision=trainer.policy)


def publish(out_dir: Path, report: RunReport, best: list[tuple[str, np.ndarray]] | None) -> None:
    """Write the report into ``out_dir``, and the best weights' shards first where ``best`` is given
    (else the shards already there stay)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if best is not None:
        report.weights, report.shards = write_shards(out_dir, best)
    report.write(out_dir)


def save_run(run_dir: Path, out_dir: Path, state: State, publish_best: list[tuple[str, np.ndarray]] | None,
             best: list[tuple[str, np.ndarray]], report: RunReport) -> None:
    """$OUT (the report, and the best weights' shards where ``publish_best`` is given), then the checkpoint."""
    publish(out_dir, report, publish_best)
    save_checkpoint(run_dir, state, best, report)
    log.info("Saved %s at epoch %d", run_dir / CHECKPOINT_FILE, report.epochs_done)


def save_checkpoint(run_dir: Path, state: State, best: list[tuple[str, np.ndarray]], report: RunReport) -> None:
    """Write the whole run (state, best float16 weights, report) as one file, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **state.arrays(), **{f"best_{i}": value for i, (_, value) in enumerate(best)},
             report=np.array(json.dumps(report.to_dict())))
    tmp = run_dir / f".{CHECKPOINT_FILE}.tmp"
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, run_dir / CHECKPOINT_FILE)


def read_checkpoint_report(run_dir: Path) -> RunReport:
    with np.load(run_dir / CHECKPOINT_FILE) as saved:
        return RunReport.from_dict(json.loads(str(saved["report"])))


def _numbered(saved, prefix: str) -> list[np.ndarray]:
    keys = [k for k in saved.files if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return [saved[k] for k in sorted(keys, key=lambda k: int(k[len(prefix):]))]


def load_checkpoint(run_dir: Path, like: State, names: list[str]):
    """(state, best weights, report) as ``save_checkpoint`` wrote them, checked against a fresh ``like``."""
    with np.load(run_dir / CHECKPOINT_FILE) as saved:
        report = RunReport.from_dict(json.loads(str(saved["report"])))
        parts = {part: _numbered(saved, f"{part}_") for part in State.PARTS}
        best = _numbered(saved, "best_")
    for part, values in parts.items():
        fresh = getattr(like, part)
        if len(values) != len(fresh) or any(v.shape != f.shape for v, f in zip(values, fresh)):
            raise DeviceRunError(f"{run_dir / CHECKPOINT_FILE} does not fit the {report.train_config['architecture']} "
                                 "model built now: pass another --name, or start over without --resume.")
    return State(**parts), list(zip(names, best)), report


def weight_names(model) -> list[str]:
    """The paths of ``model.weights`` (what a saved model holds), in order."""
    return [w.path for w in model.weights]


def named_weights(model, trainable: list, non_trainable: list) -> list[tuple[str, np.ndarray]]:
    """(path, value) for each of ``model.weights``, the values taken from stateless variable lists."""
    values = {v.path: x for v, x in zip(model.trainable_variables, trainable)}
    values.update({v.path: x for v, x in zip(model.non_trainable_variables, non_trainable)})
    return [(path, np.asarray(values[path])) for path in weight_names(model)]


def progress_line(report: RunReport, faces_per_second: float) -> str:
    """One line for the epoch ``report`` recorded last."""
    row = report.history[-1]
    return (f"epoch {row['epoch'] + 1}/{report.train_config['epochs']}: loss {row['loss']:.4f} "
            f"accuracy {row['accuracy']:.4f} val_loss {row['val_loss']:.4f} val_accuracy {row['val_accuracy']:.4f} "
            f"(best {report.best_val_accuracy:.4f}, epoch {report.best_epoch + 1}) {row['epoch_seconds']:.1f} s, "
            f"{faces_per_second:,.0f} faces/s")


def benchmark(architectures: list[str], batch_size: int, steps: int, device_config: DeviceConfig,
              repeats: int = 3) -> dict:
    """Training throughput of each architecture here, with the device, precision and batch size: faces
    per second through the compiled training step (augmentation, forward and backward pass, update)."""
    import jax

    keras = require_jax()
    platform = jax.default_backend()
    result = {"device": jax.devices()[0].device_kind, "hardware": describe_hardware(), "platform": platform,
              "precision": compute_policy(device_config.precision), "batch_size": batch_size, "steps": steps,
              "versions": {"keras": keras.__version__, "jax": jax.__version__}, "architectures": {}}
    if platform == "cpu":
        result["note"] = "CPU smoke run (JAX's CPU build): not a GPU figure"
    for name in architectures:
        result["architectures"][name] = time_training(name, batch_size, steps, device_config, repeats)
        log.info("%s: %s", name, result["architectures"][name])
    return result


def time_training(architecture: str, batch_size: int, steps: int, device_config: DeviceConfig,
                  repeats: int) -> dict:
    """Faces per second of the best of ``repeats`` epochs of ``steps`` batches of random faces resident on
    the device (after a warm-up epoch); the milliseconds a step, the compile time, the parameters."""
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (batch_size * steps, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, batch_size * steps).astype(np.int32)
    pack = Pack(faces, labels, faces[:EVAL_BATCH], labels[:EVAL_BATCH],
                {"class_weights": {"none": [1.0] * NUM_CLASSES}})
    config = TrainConfig(architecture=architecture, batch_size=batch_size, epochs=1, class_weight="none")
    trainer = DeviceTrainer(config, device_config, pack)
    state = trainer.initial_state()
    compile_seconds = trainer.compile(state)
    state, _, _ = trainer.train_epoch(state, 0, config.epochs)  # warm-up
    times = []
    for repeat in range(repeats):
        start = time.monotonic()
        state, _, _ = trainer.train_epoch(state, repeat + 1, config.epochs)
        times.append(time.monotonic() - start)
    return {"faces_per_second": round(trainer.faces_per_epoch / min(times), 1),
            "step_ms": round(min(times) / steps * 1000, 2), "compile_seconds": round(compile_seconds, 1),
            "parameters": int(trainer.model.count_params())}
