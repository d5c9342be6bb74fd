"""The model zoo, write side: a trained network becomes an entry (weights, metrics, card, sha256), and an
entry gets its calibration (temperature and uncertain threshold, fitted on the validation slice).

Entries are written to a temporary folder and renamed into place, so a crash never leaves half an
entry. The read side (fer.zoo) loads what this writes.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shlex
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from fer import calibration as calib
from fer.calibration import Calibration
from fer.data import Dataset
from fer.device_files import DEVICE_FILE, DeviceConfig, RunReport
from fer.ensemble import MIN_MEMBERS, combine
from fer.errors import ZooError
from fer.evaluation import cpu_latency_ms, plot_confusion_matrix, plot_reliability, predict_scores, score_calibrated
from fer.labels import EMOTIONS
from fer.metrics import EvaluationResult
from fer.models import architecture, with_tta
from fer.options import command_args, options
from fer.training import (
    AFTER_TRAINING,
    AVERAGE_RECORD,
    HARDWARE_FILE,
    KEPT,
    LOCATIONS,
    TrainConfig,
    command_line,
    describe_cpu,
    epochs_done,
    save_run_config,
    training_seconds,
)
from fer.zoo import (
    DEFAULT_HARDWARE,
    METRICS_FILE,
    MODEL_FILE,
    ZooEntry,
    earlier_cycles,
    ensemble_binding,
    list_entries,
    load_model,
    read_entry,
    sha256_of,
    training_cost,
    write_manifest,
)

RELIABILITY_FILE = "reliability_diagram.png"

# Zoo weights are stored in half precision and computed in float32: it halves every entry (resnet50v2 95 -> 47 MB),
# and with it what shipping a retrained zoo adds to the repository's history, at no measurable cost in accuracy
# (every score an entry records is measured after round_to_stored_precision, so it is what a loaded entry computes).
STORED_DTYPE = np.float16


def _stored(array: np.ndarray) -> np.ndarray:
    """``array`` as the zoo stores it: float32 in half precision where every value fits, anything else as is."""
    if array.dtype != np.float32:
        return array
    half = array.astype(STORED_DTYPE)
    return half if np.isfinite(half).all() else array


def round_to_stored_precision(network) -> int:
    """Round the network's weights in place to what save_network stores, so that what is evaluated, calibrated
    and recorded is exactly what a loaded entry computes. Returns how many weight arrays changed precision."""
    rounded = 0
    for variable in network.weights:
        value = np.asarray(variable.numpy())
        stored = _stored(value)
        if stored.dtype != value.dtype:
            variable.assign(stored.astype(value.dtype))
            rounded += 1
    return rounded


def _half_weights_h5(data: bytes) -> bytes:
    """A Keras weights file (HDF5) with its float32 arrays stored as by _stored; groups and attributes as they were."""
    import h5py

    out = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as source, h5py.File(out, "w") as target:
        def copy(src, dst):
            dst.attrs.update(src.attrs)
            for key, item in src.items():
                if isinstance(item, h5py.Group):
                    copy(item, dst.create_group(key))
                else:
                    dst.create_dataset(key, data=_stored(np.asarray(item[()]))).attrs.update(item.attrs)
        copy(source, target)
    return out.getvalue()


def save_network(network, path: Path) -> None:
    """Save ``network`` as a .keras file whose weights are stored in half precision (see STORED_DTYPE). Keras
    loads it as it is and casts them to the float32 variables the network computes with."""
    full = Path(path).with_name(f".float32-{Path(path).name}")
    network.save(full)
    try:
        with zipfile.ZipFile(full) as source, zipfile.ZipFile(path, "w") as target:
            for info in source.infolist():
                data = source.read(info.filename)
                target.writestr(info, _half_weights_h5(data) if info.filename.endswith(".h5") else data)
    finally:
        full.unlink()


def export_entry(network, config: TrainConfig, test: EvaluationResult, val: EvaluationResult, run_dir: Path,
                 train_seconds: float, tta: str = "none", tta_validation: dict | None = None,
                 calibration: Calibration | None = None, test_predictions=None, extra: dict | None = None) -> Path:
    """Write ``<zoo_dir>/<name>/`` atomically and return its path.

    ``network`` is the bare trained network; ``tta`` the test-time augmentation the zoo reader wraps it
    in (and that ``test`` and ``val`` were measured with); ``calibration`` (fer.calibration.fit on the raw
    scores of that model) is sealed to the saved weights here; ``test_predictions``, the predicted class of every
    test face in split order, is recorded (see prediction_record) so that a check can replay a sample of them.
    ``extra`` is merged into metrics.json last (a soup keeps the record of the entry it was made from).
    """
    name = config.run_name
    zoo_dir = Path(config.zoo_dir)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=zoo_dir))
    tmp.chmod(0o755)  # mkdtemp makes it private; an entry is meant to be shared
    try:
        save_network(network, tmp / MODEL_FILE)
        plot_confusion_matrix(test, tmp / "confusion_matrix.png", title=f"{name} on {test.split}")
        if (run_dir / "training_curves.png").exists():
            shutil.copy(run_dir / "training_curves.png", tmp / "training_curves.png")
        if (run_dir / "history.csv").exists():
            shutil.copy(run_dir / "history.csv", tmp / "history.csv")
        save_run_config(tmp, config)
        metrics = {
            "name": name,
            "architecture": config.architecture,
            "weights": config.weights or "none",
            "parameters": int(network.count_params()),
            "sha256": sha256_of(tmp / MODEL_FILE),
            "size_bytes": (tmp / MODEL_FILE).stat().st_size,
            "tta": tta,
            "tta_validation_accuracy": tta_validation or {},
            "latency_ms": round(cpu_latency_ms(with_tta(network, tta)), 2),
            "latency_on": describe_cpu(),
            "data": config.data,
            "epochs": epochs_done(run_dir / "history.csv"),
            "trained_on": trained_on(run_dir),
            "train_seconds": round(train_seconds, 1),
            "test": test.to_dict(),
            "validation": val.to_dict(),
        }
        if test_predictions is not None:
            metrics["test_predictions"] = prediction_record(test_predictions)
        if config.init_from:
            metrics["init"] = initial_run(config.init_from)
        if (run_dir / AVERAGE_RECORD).exists():
            metrics["weight_average"] = json.loads((run_dir / AVERAGE_RECORD).read_text())
        if device := device_run(run_dir):
            metrics["device_run"] = device
        metrics.update(extra or {})
        if calibration is not None:
            metrics["calibration"] = calibration.sealed(metrics["sha256"]).to_dict()
            plot_entry_reliability(name, calibration, tmp / RELIABILITY_FILE)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "README.md").write_text(model_card(metrics, config))
        final = zoo_dir / name
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=zoo_dir))
            os.replace(final, old / name)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
        write_manifest(zoo_dir)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prediction_record(predictions) -> str:
    """Predicted class ids (0-6), one per face in split order, as a string of digits (3.6 kB for PublicTest)."""
    return "".join(str(int(p)) for p in np.asarray(predictions))


def plot_entry_reliability(name: str, calibration: Calibration, path: Path) -> None:
    """The entry's reliability diagram: on the test split where it was measured, else on validation (none
    when neither was measured)."""
    measured = calibration.test or calibration.validation
    if measured is not None:
        plot_reliability({name: measured}, path)


def _replace_file(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def record_calibration(entry_dir: Path, calibration: Calibration) -> Calibration:
    """Seal ``calibration`` to the entry's weights and write it into its metrics.json, model card, reliability
    diagram and the manifest. The weights must match their recorded sha256; a previous calibration, valid or
    not, is replaced. Returns the sealed calibration."""
    entry = read_entry(Path(entry_dir))
    weights = sha256_of(entry.model_file)
    if weights != entry.metrics.get("sha256"):
        raise ZooError(f"{entry.model_file} does not match its recorded sha256: restore the weights before "
                       "calibrating them.")
    sealed = calibration.sealed(weights)
    metrics = {**entry.metrics, "calibration": sealed.to_dict()}
    plot_entry_reliability(entry.name, sealed, entry.path / RELIABILITY_FILE)
    _replace_file(entry.path / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    if (entry.path / "config.json").is_file():
        config = TrainConfig.from_dict(json.loads((entry.path / "config.json").read_text()))
        _replace_file(entry.path / "README.md", model_card(metrics, config))
    write_manifest(entry.path.parent)
    return sealed


def common_validation_slice(entries: list[ZooEntry]) -> tuple[float, int]:
    """The (val_fraction, seed) every entry's run used; refused when they differ (no common validation slice)."""
    slices = {}
    for entry in entries:
        config = TrainConfig.from_dict(json.loads((entry.path / "config.json").read_text())) \
            if (entry.path / "config.json").is_file() else TrainConfig()
        slices[entry.name] = (config.val_fraction, config.seed)
    if len(set(slices.values())) > 1:
        raise ZooError("The ensemble's members were selected on different validation slices ("
                       + ", ".join(f"{n}: val_fraction {f}, seed {s}" for n, (f, s) in slices.items())
                       + "): there is no validation slice to fit its threshold on without test faces.")
    return next(iter(slices.values()))


def validation_slice_of(entry_dir: Path) -> tuple[float, int]:
    """The (val_fraction, seed) of the run that made an entry: fitting rebuilds exactly its validation slice."""
    return common_validation_slice([read_entry(Path(entry_dir))])


def calibrate_entry(entry_dir: Path, dataset: Dataset) -> Calibration:
    """Fit the entry's temperature on its raw validation scores, choose its uncertain threshold, measure both on
    the test split (for the record only) and record them (see record_calibration). ``dataset`` must be split as
    the entry's run split it (see validation_slice_of). Fitting the raw scores makes refitting idempotent."""
    raw = load_model(str(entry_dir), calibrated=False)  # checks the weights, not the calibration it replaces
    val, test = predict_scores(raw, dataset.val.images), predict_scores(raw, dataset.test.images)
    fitted = calib.fit(val, dataset.val.labels, test, dataset.test.labels, val_name=dataset.val.source_name,
                       test_name=dataset.test.source_name)
    return record_calibration(entry_dir, fitted)


def choose_members(val_scores: dict[str, np.ndarray], labels) -> tuple[list[str], list[dict]]:
    """The ensemble's members: of every set of MIN_MEMBERS or more models (``val_scores``: name -> calibrated
    validation probabilities), the one whose mean scores most validation faces right (ties: more members, then
    zoo order). Returns the members and every candidate's validation accuracy, best first."""
    names = list(val_scores)
    candidates = [list(c) for k in range(len(names), MIN_MEMBERS - 1, -1) for c in itertools.combinations(names, k)]
    rows = [{"members": c, "validation_accuracy": float(
        (np.asarray(combine(np.stack([val_scores[n] for n in c]))).argmax(1) == np.asarray(labels)).mean())}
        for c in candidates]
    rows.sort(key=lambda r: -r["validation_accuracy"])  # stable: among equals, more members and zoo order first
    return rows[0]["members"], rows


def calibrate_ensemble(zoo_dir: Path, dataset: Dataset) -> Calibration:
    """Choose the ensemble's members on the validation slice (see choose_members; the test split plays no part),
    fit its own temperature on the mean of its calibrated members' validation scores (lowest ECE) and its
    uncertain threshold on the result, measure both on test and record them in the manifest, sealed to its
    members' fingerprints. Every entry must be calibrated and share the validation slice ``dataset`` holds."""
    zoo_dir = Path(zoo_dir)
    entries = list_entries(zoo_dir)
    if len(entries) < MIN_MEMBERS:  # members are chosen among local entries: their scores are computed here
        raise ZooError(f"The ensemble needs at least {MIN_MEMBERS} local zoo entries and {zoo_dir} has "
                       f"{len(entries)}: train another model with train.py.")
    if missing := [e.name for e in entries if e.calibration is None]:
        raise ZooError(f"Calibrate the zoo's models first: {', '.join(missing)} "
                       f"(python -m fer zoo calibrate all --data PATH).")
    common_validation_slice(entries)
    val = {e.name: score_calibrated(e.name, dataset.val.images, zoo_dir) for e in entries}
    members, selection = choose_members({n: s.calibrated for n, s in val.items()}, dataset.val.labels)
    test = {n: score_calibrated(n, dataset.test.images, zoo_dir) for n in members}  # for the record only
    temperature = calib.fit_temperature(np.asarray(combine(np.stack([val[n].calibrated for n in members]))),
                                        dataset.val.labels)
    splits = {}
    for split, scored in ((dataset.val, val), (dataset.test, test)):
        chosen = [scored[n] for n in members]
        splits[split.name] = (np.asarray(combine(np.stack([m.raw for m in chosen]))),
                              np.asarray(combine(np.stack([m.calibrated for m in chosen]), temperature)),
                              split.labels, split.source_name)
    calibration = calib.record(temperature, splits[dataset.val.name], splits[dataset.test.name])
    return record_ensemble_calibration(zoo_dir, calibration, members, selection,
                                       test_predictions=splits[dataset.test.name][1].argmax(axis=1))


def record_ensemble_calibration(zoo_dir: Path, calibration: Calibration, members: list[str] | None = None,
                                selection: list[dict] | None = None, test_predictions=None) -> Calibration:
    """Seal the ensemble's calibration to its members' (None: every entry) fingerprints and write it, with the
    members, the validation accuracy of every candidate set (``selection``) and the ensemble's predicted class
    of each test face (for the report's paired comparison), into the manifest."""
    fingerprints = {e.name: e.fingerprint for e in list_entries(zoo_dir) if members is None or e.name in members}
    sealed = calibration.sealed(ensemble_binding(fingerprints))
    recorded = {"test_predictions": prediction_record(test_predictions)} if test_predictions is not None else {}
    write_manifest(zoo_dir, ensemble={"members": fingerprints, **({"selection": selection} if selection else {}),
                                      **recorded, **sealed.to_dict()})
    return sealed


def trained_on(run_dir: Path) -> str:
    path = run_dir / HARDWARE_FILE
    return path.read_text().strip() if path.is_file() else DEFAULT_HARDWARE


def device_run(run_dir: Path) -> dict | None:
    """What the card tells of a run trained on the GPU machine (its device.json, written by reassembly): the
    device, precision, the device trainer's options, the epochs asked for where --fit-epochs planned fewer,
    and its speed. None for a run trained here."""
    path = run_dir / DEVICE_FILE
    if not path.is_file():
        return None
    report = RunReport.from_dict(json.loads(path.read_text()))
    return {"hardware": report.hardware, "precision": report.precision, "device_config": report.device_config,
            "epochs_asked": report.epochs_asked, "faces_per_second": report.faces_per_second,
            "versions": report.versions}


def _device_commands(config: TrainConfig, device: dict) -> str:
    """The commands that train ``config`` on the GPU machine and bring it here. The epochs are the ones the
    run planned: with --fit-epochs its plan settled during the warm-up, whose rates do not depend on it, so
    a run asked for them from the start follows the same schedule."""
    device_config = DeviceConfig(**{**device["device_config"], "fit_epochs": False})
    training = [*command_args(config, keep=lambda n: n not in ("architecture", *LOCATIONS, *AFTER_TRAINING)),
                *command_args(device_config)]
    split = command_args(config, keep=lambda n: n in ("val_fraction", "seed"))
    export = command_args(config, keep=lambda n: n in AFTER_TRAINING and n not in LOCATIONS)
    return "\n".join([
        shlex.join(["python", "scripts/device_train.py", "pack", "--data", "PATH/TO/fer2013", *split]),
        "# on the GPU machine, set up as `python scripts/device_train.py --help` says:",
        shlex.join(["python3", "scripts/device_train.py", "train", "--arch", config.architecture, *training]),
        f"python scripts/device_train.py reassemble FILES_AT --name {config.run_name} --data PATH/TO/fer2013",
        shlex.join(["python", "train.py", "--arch", config.architecture, "--output", "runs", "--name",
                    config.run_name, "--resume", "--data", "PATH/TO/fer2013", *export])])


def device_section(metrics: dict, config: TrainConfig) -> str:
    """The card's account of a GPU-trained run: where and how it trained, the device trainer's own options,
    and the commands that reproduce it (instead of a train.py command, which trains on the host)."""
    device = metrics["device_run"]
    versions = device.get("versions", {})
    stack = ", ".join(f"{k} {v}" for k, v in versions.items())
    planned = (f" `--fit-epochs` planned its {config.epochs} epochs, of the {device['epochs_asked']} asked for, "
               "to end its schedule inside the command's time budget." if device.get("epochs_asked") else "")
    table = options_table(DeviceConfig(**device["device_config"]))
    return f"""Trained on the GPU machine by `scripts/device_train.py` ({device['hardware']}, Keras dtype policy
`{device['precision']}`{', ' + stack if stack else ''}): faces resident on the device, augmentation inside the
compiled step, {device['faces_per_second']:,.0f} faces a second.{planned} Its weights came back in float16 and
scored the device's validation accuracy here before export. The device trainer's own options:

{table}

Reproduce the model (the README's "On a GPU machine" gives each step):

```bash
{_device_commands(config, device)}
```"""


def initial_run(init_from: str) -> dict:
    """What a warm restart started from: that run's config and cost (and what it grew from), where they
    lie beside it."""
    path = Path(init_from)
    folder = path if path.is_dir() else path.parent
    run = {"from": init_from}
    if (folder / "config.json").is_file():
        run["config"] = json.loads((folder / "config.json").read_text())
    if (folder / METRICS_FILE).is_file():
        first = json.loads((folder / METRICS_FILE).read_text())
        run.update(epochs=first["epochs"], train_seconds=first["train_seconds"],
                   trained_on=first.get("trained_on", DEFAULT_HARDWARE))
        for record in ("weight_average", "soup"):
            if first.get(record):
                run[record] = first[record]
        if first.get("init"):
            run["init"] = first["init"]
    elif (folder / "history.csv").is_file():  # a run folder that was never exported
        run.update(epochs=epochs_done(folder / "history.csv"),
                   train_seconds=round(training_seconds(folder / "history.csv"), 1), trained_on=trained_on(folder))
    return run


def _reproduce_model(config, metrics: dict) -> str:
    cycles = earlier_cycles(metrics)
    soup = metrics.get("soup")
    then = f", then `{soup_command(config.run_name, soup['with'])}`" if soup else ""
    if not cycles:
        return f"Reproduce the model: `{command_line(config, data='PATH/TO/fer2013')}`{then}"
    if any("config" not in cycle for cycle in cycles):
        return (f"Reproduce the model: `{command_line(config, data='PATH/TO/fer2013')}`{then} (a warm restart "
                f"from `{metrics['init']['from']}`)")
    commands, init_from = [], None
    for k, cycle in enumerate(cycles, 1):
        name = f"{config.run_name}_cycle{k}"
        if cycle.get("soup"):  # exported, then souped with the weights it started from: the next starts there
            cycle_config = TrainConfig.from_dict({**cycle["config"], "name": name, "init_from": init_from,
                                                  "export": True, "zoo_dir": SOUP_CYCLES})
            commands += [command_line(cycle_config, data="PATH/TO/fer2013") + f" --zoo-dir {SOUP_CYCLES}",
                         soup_command(name, init_from or cycle["soup"]["with"], zoo_dir=SOUP_CYCLES)]
            init_from = f"{SOUP_CYCLES}/{name}"
            continue
        commands.append(command_line(TrainConfig.from_dict({**cycle["config"], "name": name, "init_from": init_from,
                                                            "export": False}), data="PATH/TO/fer2013"))
        kept = KEPT.get(cycle.get("weight_average", {}).get("chosen", "best_epoch"), KEPT["best_epoch"])
        init_from = f"runs/{name}/{kept}"
    commands.append(command_line(TrainConfig.from_dict({**config.to_dict(), "init_from": init_from}),
                                 data="PATH/TO/fer2013"))
    if soup:
        commands.append(soup_command(config.run_name, init_from))
    commands = "\n".join(commands)
    soups = ("; `python -m fer zoo soup` averages a cycle's weights with those it started from (the weights "
             "its `--with` names were recorded by their sha256 in `metrics.json`)") if (
        soup or any(c.get("soup") for c in cycles)) else ""
    return f"""Reproduce the model: {len(cycles) + 1} cycles, each after the first a warm restart from the weights
the one before kept (a new learning-rate cycle, shaped by the schedule its command sets; same
validation slice){soups}:

```bash
{commands}
```"""


SOUP_CYCLES = "runs/soup_cycles"
"""Where a card's reproduce commands export an earlier cycle that was souped (fer.soup) before the next began."""


def soup_command(name: str, partner: str, zoo_dir: str | None = None) -> str:
    """The ``python -m fer zoo soup`` command that souped entry ``name`` with ``partner``."""
    where = f" --zoo-dir {zoo_dir}" if zoo_dir else ""
    return f"python -m fer zoo soup {name} --with {partner} --data PATH/TO/fer2013{where}"


def _cycle_epochs(cycle: dict) -> str:
    planned = cycle.get("config", {}).get("epochs", cycle["epochs"])
    return str(cycle["epochs"]) if cycle["epochs"] >= planned else f"{cycle['epochs']} (stopped early, of {planned} planned)"


def calibration_rows(measured: list) -> str:
    """Markdown rows of raw vs calibrated accuracy, ECE, NLL and Brier score, one per SplitCalibration."""
    return "\n".join(
        f"| {m.split} | {m.n} | {m.calibrated.accuracy:.4f} | {m.raw.ece:.4f} | **{m.calibrated.ece:.4f}** | "
        f"{m.raw.nll:.4f} | {m.calibrated.nll:.4f} | {m.raw.brier:.4f} | {m.calibrated.brier:.4f} |"
        for m in measured)


CALIBRATION_HEAD = ("| split | faces | accuracy | ECE raw | ECE calibrated | NLL raw | NLL calibrated | Brier raw | "
                    "Brier calibrated |\n|---|---|---|---|---|---|---|---|---|")


def selective_sentence(c: Calibration) -> str:
    """The uncertain threshold's rule, and its coverage and accuracy on each split it was measured on."""
    rule = (f"the lowest threshold (in steps of {calib.THRESHOLD_STEP}) at which the validation faces whose top "
            f"calibrated score reaches it are at least {c.target_accuracy:.0%} correct.")
    measured = [m for m in (c.validation, c.test) if m is not None and m.selective is not None]
    if not measured:
        return rule
    return rule + " At or above it: " + ", ".join(
        f"{m.selective.accuracy:.1%} accuracy on {m.selective.coverage:.1%} of the {m.split} faces" for m in measured) + "."


def average_note(metrics: dict) -> str:
    """The card's sentence on --average-last: which weights shipped, and the validation scores that chose them."""
    note = ""
    if average := metrics.get("weight_average"):
        note = _average_sentence(average)
    if zoo_soup := metrics.get("soup"):
        accuracy = zoo_soup["validation_accuracy"]
        note += (f"{' ' if note else chr(10)}The entry's weights were then averaged with `{zoo_soup['with']}` (weights "
                 f"sha256 {zoo_soup['with_sha256'][:12]}..., meant to be the ones this cycle started from; `python -m "
                 f"fer zoo soup`, batch-norm statistics recomputed): {accuracy['soup']:.4f} on validation with "
                 f"test-time views against {accuracy['entry']:.4f}, so the soup is what this entry holds.")
    return note


def _average_sentence(average: dict) -> str:
    scores, epochs = average["validation_accuracy"], average["epochs"]
    mean = f"the mean of the weights after epochs {epochs[0]}-{epochs[-1]}"
    which = {"average": mean, "soup": f"a soup: {mean}, averaged with the weights this cycle started from"}.get(
        average["chosen"], f"the best epoch, not {mean}")
    soup = f", {scores['soup']:.4f} for the soup" if "soup" in scores else ""
    return (f"\nThe weights are {which}: one view on validation, {scores['average']:.4f} for the mean{soup} against "
            f"{scores['best_epoch']:.4f} for the best epoch.")


def calibration_section(metrics: dict) -> str:
    """The model card's calibration section: temperature, raw vs calibrated quality, the uncertain threshold."""
    name = metrics["name"]
    refit = f"`python -m fer zoo calibrate {name} --data PATH/TO/fer2013`"
    if not metrics.get("calibration"):
        return (f"## Calibration\n\nNot calibrated: scores are the network's probabilities as they are (T = 1) "
                f"and no face is called uncertain. Fit a temperature on the validation slice with {refit}.")
    c = Calibration.from_dict(metrics["calibration"])
    measured = [m for m in (c.validation, c.test) if m is not None]
    figure = f"\n\n![reliability diagram]({RELIABILITY_FILE})" if measured else ""
    return f"""## Calibration

Scores are temperature-scaled, `softmax(log p / T)` with **T = {c.temperature:.4f}**, fitted on the
validation slice (the T, on a grid of {calib.TEMPERATURE_STEP}, with the lowest validation ECE; the test split is never used to fit) and applied by
`fer.zoo.load_model`, so the demo, its API, the command line and the ensemble all show calibrated
probabilities. The top emotion never changes, so accuracy does not either. ECE: expected calibration error,
top label, {calib.NUM_BINS} equal-width bins; NLL: mean negative log-likelihood; Brier: squared error summed
over the seven classes, mean over faces (lower is better for all three).

{CALIBRATION_HEAD}
{calibration_rows(measured)}

**Uncertain** below a top score of **{c.uncertain_threshold:.2f}**, {selective_sentence(c)} The demo marks
the faces below it uncertain.{figure}

Refit (idempotent: the temperature is fitted on the raw scores): {refit}"""


def options_table(config) -> str:
    """Every option of ``config`` (a TrainConfig, DeviceConfig ...) with its flag, value and help text, as a
    markdown table."""
    lines = ["| option | flag | value | meaning |", "|---|---|---|---|"]
    for opt in options(type(config)):
        value = opt.get(config)
        shown = opt.none if value is None and opt.none else value
        lines.append(f"| {opt.name} | `{opt.flag}` | `{shown}` | {opt.help.replace('|', '/')} |")
    return "\n".join(lines)


def model_card(metrics: dict, config: TrainConfig) -> str:
    """A Hugging Face model card (YAML metadata + markdown) for an entry."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    name = metrics["name"]
    test = EvaluationResult.from_dict(metrics["test"])
    dataset = dict(dataset_type="fer2013", dataset_name="FER-2013", dataset_split=test.split)
    task = dict(task_type="image-classification", task_name="Facial expression recognition")
    data = ModelCardData(
        library_name="keras",
        pipeline_tag="image-classification",
        datasets=["fer2013"],
        license="mit",
        tags=["facial-expression-recognition", "emotion", "fer2013", "keras", config.architecture],
        model_name=name,
        eval_results=[
            EvalResult(**task, **dataset, metric_type="accuracy", metric_name="Accuracy", metric_value=round(test.accuracy, 4)),
            EvalResult(**task, **dataset, metric_type="f1", metric_name="Macro F1", metric_value=round(test.macro_f1, 4)),
        ],
    )
    rows = "\n".join(
        f"| {e} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
        for e, m in test.per_class.items())
    hours = metrics["train_seconds"] / 3600
    tta = {
        "none": "a single forward pass",
        "flip": "the mean of the scores of the face and its mirror image (flip test-time augmentation, "
                "which `fer.zoo.load_model` wraps around the saved network)",
        "flip_shift": "the mean of the scores of 10 views: the face and its mirror image, each also shifted "
                      "by 2 pixels up, down, left and right (test-time augmentation, which `fer.zoo.load_model` "
                      "wraps around the saved network)",
    }[metrics["tta"]]
    if metrics.get("tta_validation_accuracy"):
        tta += (" — chosen on the validation slice (" + ", ".join(
            f"{m}: {a:.4f}" for m, a in metrics["tta_validation_accuracy"].items()) + ")")
    c = config.to_dict()
    arch = architecture(config.architecture)
    start = {None: "from scratch (random initial weights)"}.get(
        config.weights, f"starting from {config.weights} weights")
    if config.init_from:
        start = f"as a warm restart from `{config.init_from}`"
    cycles = [*earlier_cycles(metrics), metrics]
    hardware = list(dict.fromkeys(cycle.get("trained_on", DEFAULT_HARDWARE) for cycle in cycles))
    cost = f"{metrics['epochs']} epochs, {hours:.2f} h on {hardware[-1]}"
    if all("epochs" in cycle for cycle in cycles) and len(cycles) > 1:
        epochs, seconds = training_cost(metrics)
        cost = (f"{len(cycles)} training cycles of " + ", ".join(_cycle_epochs(c) for c in cycles)
                + f" epochs, each after the first a warm restart: {epochs} epochs, {seconds / 3600:.2f} h in all on "
                + " and ".join(hardware))
    optimizer = {"adamw": "AdamW", "sgd": "SGD with Nesterov momentum"}[
        metrics.get("device_run", {}).get("device_config", {}).get("optimizer", "adamw")]
    content = f"""---
{data.to_yaml()}
---

# {name}: facial expression recognition on FER-2013

`{config.architecture}` trained {start} on FER-2013 by this project's `train.py`. It takes a
{arch.input_size}x{arch.input_size} grayscale face (raw 0-255 pixels; preprocessing inside the model: {arch.preprocessing})
and returns probabilities for {", ".join(EMOTIONS)}. Each prediction is {tta}.

## Results on the FER-2013 {test.split} split ({test.n} faces)

Accuracy **{test.accuracy:.4f}**, macro F1 **{test.macro_f1:.4f}**. Checkpoint chosen on a seeded,
stratified {c['val_fraction']:.0%} validation slice of the training set (validation accuracy
{metrics['validation']['accuracy']:.4f}); the test split was used for this report only.{average_note(metrics)}

| emotion | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

![confusion matrix](confusion_matrix.png)

![training curves](training_curves.png)

Reproduce the numbers: `python -m fer evaluate --model {name} --data PATH/TO/fer2013`

{calibration_section(metrics)}

## Training

{cost}; {metrics['parameters']:,} parameters;
{metrics['latency_ms']:.1f} ms to score one face on {metrics.get('latency_on', DEFAULT_HARDWARE)} (batch of one, test-time augmentation included).
{optimizer} with a {c['schedule']} learning-rate schedule. Every training option (`python train.py --help`), as this
run set it; the run record is `config.json`, the per-epoch history `history.csv`:

{options_table(config)}

{device_section(metrics, config) if metrics.get("device_run") else _reproduce_model(config, metrics)}

## Intended use and limits

For research, teaching and demos of facial expression recognition. FER-2013 is mostly frontal faces
of adults scraped from the web, with noisy labels (human accuracy is about 65%); expect worse results on
children, profile views, occlusions and faces unlike that data. A facial expression is not a feeling:
the model scores how a face looks, not what a person feels. Do not use it for decisions about people
(hiring, policing, health, education, surveillance).
"""
    ModelCard(content)  # fails loudly if the metadata does not parse
    return content
