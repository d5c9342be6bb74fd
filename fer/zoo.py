"""The model zoo: one folder per trained model, data not code.

An entry ``model_zoo/<name>/`` holds ``model.keras``, ``metrics.json`` (test and validation scores,
training cost, sha256 of the weights), ``config.json`` (the run that made it), ``confusion_matrix.png``,
``training_curves.png`` and ``README.md`` (a Hugging Face model card). Entries are written to a
temporary folder and renamed into place, so a crash never leaves half an entry; folders whose names
start with ``.`` are never listed or loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fer.errors import UnknownModelError, ZooError
from fer.evaluation import EvaluationResult, cpu_latency_ms, plot_confusion_matrix
from fer.labels import EMOTIONS, IMAGE_SIZE
from fer.training import HARDWARE_FILE, command_line, describe_cpu, epochs_done, training_seconds

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_zoo_dir() -> Path:
    """``$FER_ZOO_DIR`` if set, else the ``model_zoo/`` folder beside this package."""
    return Path(os.environ.get("FER_ZOO_DIR", REPO_ROOT / "model_zoo"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ZooEntry:
    """A model in the zoo, as read from its folder."""

    name: str
    path: Path
    metrics: dict

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def architecture(self) -> str:
        return self.metrics.get("architecture", self.name)

    @property
    def test(self) -> EvaluationResult:
        return EvaluationResult.from_dict(self.metrics["test"])

    def verify(self) -> None:
        """Refuse weights whose sha256 differs from the one recorded at export."""
        expected = self.metrics.get("sha256")
        if not self.model_file.is_file():
            raise ZooError(f"Zoo entry {self.path} has no {MODEL_FILE}: re-export it with train.py.")
        actual = sha256_of(self.model_file)
        if expected != actual:
            raise ZooError(f"{self.model_file} does not match its recorded sha256 ({actual[:12]}... != "
                           f"{str(expected)[:12]}...): the file is corrupt or was replaced. Restore it "
                           "(git checkout / re-download) or re-export the entry.")


def read_entry(path: Path) -> ZooEntry:
    metrics_path = path / METRICS_FILE
    if not metrics_path.is_file():
        raise ZooError(f"{path} is not a zoo entry: it has no {METRICS_FILE}.")
    metrics = json.loads(metrics_path.read_text())
    return ZooEntry(name=metrics.get("name", path.name), path=path, metrics=metrics)


def list_entries(zoo_dir: Path | None = None) -> list[ZooEntry]:
    """Complete entries in the zoo, by name; hidden (temporary) folders are ignored."""
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    if not zoo_dir.is_dir():
        return []
    entries = []
    for child in sorted(zoo_dir.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / METRICS_FILE).is_file() \
                and (child / MODEL_FILE).is_file():
            entries.append(read_entry(child))
    return entries


def read_manifest(zoo_dir: Path | None = None) -> dict[str, dict]:
    """The zoo's manifest, by model name (empty when there is none)."""
    path = (Path(zoo_dir) if zoo_dir else default_zoo_dir()) / MANIFEST_FILE
    if not path.is_file():
        return {}
    return {m["name"]: m for m in json.loads(path.read_text())["models"]}


def manifest_records(zoo_dir: Path | None = None, hub: dict[str, dict] | None = None) -> list[dict]:
    """One record per zoo entry: file, sha256, size, parameters, headline metrics and where it is
    published on the Hub (from ``hub``, else the existing manifest)."""
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    old = read_manifest(zoo_dir)
    records = []
    for entry in list_entries(zoo_dir):
        m = entry.metrics
        published = (hub or {}).get(entry.name) or old.get(entry.name, {}).get("hub") or \
            {"repo_id": None, "revision": None}
        records.append({
            "name": entry.name, "architecture": entry.architecture, "file": f"{entry.name}/{MODEL_FILE}",
            "sha256": m["sha256"], "size_bytes": m["size_bytes"], "parameters": m["parameters"],
            "hub": published,
            "metrics": {"accuracy": m["test"]["accuracy"], "macro_f1": m["test"]["macro_f1"]},
        })
    return records


def write_manifest(zoo_dir: Path | None = None, hub: dict[str, dict] | None = None) -> Path:
    """Rewrite manifest.json from the zoo's entries (see manifest_records). Written atomically."""
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    tmp = zoo_dir / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps({"models": manifest_records(zoo_dir, hub)}, indent=2) + "\n")
    os.replace(tmp, zoo_dir / MANIFEST_FILE)
    return zoo_dir / MANIFEST_FILE


def push_entry(name: str, repo_id: str, zoo_dir: Path | None = None, token: str | None = None):
    """Upload zoo entry ``name`` to the Hub model repo ``repo_id`` and pin the commit in the manifest."""
    from huggingface_hub import CommitOperationAdd, HfApi

    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    entry = read_entry(zoo_dir / name)
    entry.verify()
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"), token=token)
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f))
                  for f in sorted(entry.path.iterdir()) if f.is_file()]
    info = api.create_commit(repo_id, operations, commit_message=f"Upload {name} from the FER-2013 model zoo")
    write_manifest(zoo_dir, hub={name: {"repo_id": repo_id, "revision": info.oid}})
    return info


def _download_from_hub(name: str, published: dict, expected_sha256: str) -> Path:
    """The pinned revision of a published model file: from the local cache, else downloaded."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    kwargs = dict(repo_id=published["repo_id"], filename=MODEL_FILE, revision=published["revision"],
                  cache_dir=os.environ.get("HF_HUB_CACHE"), endpoint=os.environ.get("HF_ENDPOINT"))
    try:
        path = Path(hf_hub_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        path = Path(hf_hub_download(**kwargs))
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ZooError(f"{name} from {published['repo_id']}@{published['revision']} does not match the sha256 "
                       f"in the manifest ({actual[:12]}... != {expected_sha256[:12]}...): refusing to load it.")
    return path


def resolve_model_path(model: str, zoo_dir: Path | None = None) -> Path:
    """A model file for a zoo name, an entry folder or a model file path.

    A name resolves to the local ``model_zoo/<name>/`` first, then to the Hub repo and revision the
    manifest pins (cache, then download); either way the file's sha256 is checked before use.
    """
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    candidate = Path(model)
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        read_entry(candidate).verify()
        return candidate / MODEL_FILE
    entry_dir = zoo_dir / model
    if not model.startswith(".") and (entry_dir / METRICS_FILE).is_file():
        read_entry(entry_dir).verify()
        return entry_dir / MODEL_FILE
    published = read_manifest(zoo_dir).get(model)
    if published and published["hub"].get("repo_id"):
        return _download_from_hub(model, published["hub"], published["sha256"])
    names = [e.name for e in list_entries(zoo_dir)]
    raise UnknownModelError(f"No model named {model!r}: use a zoo entry ({', '.join(names) or 'the zoo is empty'}), "
                            "an entry folder or a .keras file.")


ENSEMBLE = "ensemble"


def load_model(model: str, zoo_dir: Path | None = None):
    """Load a Keras model by zoo name or path, with Keras safe mode on (a .tflite file: a LiteModel).

    ``ensemble`` is a model averaging the probabilities of every entry in the zoo.
    """
    import keras

    from fer.models import INPUT_SHAPE  # importing fer.models also registers its custom layers

    if model == ENSEMBLE and not Path(model).exists():
        members = [load_model(e.name, zoo_dir) for e in list_entries(zoo_dir)]
        if not members:
            raise UnknownModelError("The ensemble needs at least one zoo entry: train a model with train.py.")
        if len(members) == 1:
            return members[0]
        inputs = keras.Input(INPUT_SHAPE, name="face")
        outputs = keras.layers.Average(name="ensemble_mean")([m(inputs) for m in members])
        return keras.Model(inputs, outputs, name=ENSEMBLE)
    path = resolve_model_path(model, zoo_dir)
    if path.suffix == ".tflite":
        from fer.lite import LiteModel

        return LiteModel(path)
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def export_entry(model, config, test: EvaluationResult, val: EvaluationResult, run_dir: Path,
                 train_seconds: float, tta: str = "none", tta_validation: dict | None = None) -> Path:
    """Write ``<zoo_dir>/<name>/`` atomically and return its path."""
    name = config.run_name
    zoo_dir = Path(config.zoo_dir)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=zoo_dir))
    tmp.chmod(0o755)  # mkdtemp makes it private; an entry is meant to be shared
    try:
        model.save(tmp / MODEL_FILE)
        plot_confusion_matrix(test, tmp / "confusion_matrix.png", title=f"{name} on the test split")
        if (run_dir / "training_curves.png").exists():
            shutil.copy(run_dir / "training_curves.png", tmp / "training_curves.png")
        if (run_dir / "history.csv").exists():
            shutil.copy(run_dir / "history.csv", tmp / "history.csv")
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        metrics = {
            "name": name,
            "architecture": config.architecture,
            "parameters": int(model.count_params()),
            "sha256": sha256_of(tmp / MODEL_FILE),
            "size_bytes": (tmp / MODEL_FILE).stat().st_size,
            "tta": tta,
            "tta_validation_accuracy": tta_validation or {},
            "latency_ms": round(cpu_latency_ms(model), 2),
            "latency_on": describe_cpu(),
            "data": config.data,
            "epochs": epochs_done(run_dir / "history.csv"),
            "trained_on": trained_on(run_dir),
            "train_seconds": round(train_seconds, 1),
            "test": test.to_dict(),
            "validation": val.to_dict(),
        }
        if config.init_from:
            metrics["init"] = initial_run(config.init_from)
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


DEFAULT_HARDWARE = "a 2-core CPU"  # entries exported before runs recorded their hardware trained on this one


def trained_on(run_dir: Path) -> str:
    path = run_dir / HARDWARE_FILE
    return path.read_text().strip() if path.is_file() else DEFAULT_HARDWARE


def earlier_cycles(metrics: dict) -> list[dict]:
    """The cycles a warm restart grew from (each ``initial_run``), the first cycle first."""
    chain, init = [], metrics.get("init")
    while init:
        chain.insert(0, init)
        init = init.get("init")
    return chain


def training_cost(metrics: dict) -> tuple[int, float]:
    """Epochs and seconds of training in all, every earlier cycle of a warm restart included."""
    runs = [*earlier_cycles(metrics), metrics]
    return sum(r.get("epochs", 0) for r in runs), sum(r.get("train_seconds", 0) for r in runs)


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
        if first.get("init"):
            run["init"] = first["init"]
    elif (folder / "history.csv").is_file():  # a run folder that was never exported
        run.update(epochs=epochs_done(folder / "history.csv"),
                   train_seconds=round(training_seconds(folder / "history.csv"), 1), trained_on=trained_on(folder))
    return run


def _reproduce_model(config, metrics: dict) -> str:
    cycles = earlier_cycles(metrics)
    if not cycles:
        return f"Reproduce the model: `{command_line(config, data='PATH/TO/fer2013')}`"
    if any("config" not in cycle for cycle in cycles):
        return (f"Reproduce the model: `{command_line(config, data='PATH/TO/fer2013')}` (a warm restart "
                f"from `{metrics['init']['from']}`)")
    from fer.training import TrainConfig

    configs, init_from = [], None
    for k, cycle in enumerate(cycles, 1):
        configs.append(TrainConfig.from_dict({**cycle["config"], "name": f"{config.run_name}_cycle{k}",
                                              "init_from": init_from, "export": False}))
        init_from = f"runs/{configs[-1].run_name}/best.keras"
    configs.append(TrainConfig.from_dict({**config.to_dict(), "init_from": init_from}))
    commands = "\n".join(command_line(c, data="PATH/TO/fer2013") + ("" if c.export else " --no-export")
                          for c in configs)
    return f"""Reproduce the model: {len(configs)} cycles, each after the first a warm restart from the best
epoch of the one before (the learning rate rises again and decays over a new cosine cycle; same
validation slice):

```bash
{commands}
```"""


def _cycle_epochs(cycle: dict) -> str:
    planned = cycle.get("config", {}).get("epochs", cycle["epochs"])
    return str(cycle["epochs"]) if cycle["epochs"] >= planned else f"{cycle['epochs']} (stopped early, of {planned} planned)"


def model_card(metrics: dict, config) -> str:
    """A Hugging Face model card (YAML metadata + markdown) for an entry."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    name = metrics["name"]
    test = EvaluationResult.from_dict(metrics["test"])
    dataset = dict(dataset_type="fer2013", dataset_name="FER-2013", dataset_split="PublicTest")
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
                "built into the saved model)",
        "flip_shift": "the mean of the scores of 10 views: the face and its mirror image, each also shifted "
                      "by 2 pixels up, down, left and right (test-time augmentation, built into the saved model)",
    }[metrics["tta"]]
    if metrics.get("tta_validation_accuracy"):
        tta += (" — chosen on the validation slice (" + ", ".join(
            f"{m}: {a:.4f}" for m, a in metrics["tta_validation_accuracy"].items()) + ")")
    c = config.to_dict()
    cycles = [*earlier_cycles(metrics), metrics]
    hardware = list(dict.fromkeys(cycle.get("trained_on", DEFAULT_HARDWARE) for cycle in cycles))
    cost = f"{metrics['epochs']} epochs, {hours:.2f} h on {hardware[-1]}"
    if all("epochs" in cycle for cycle in cycles) and len(cycles) > 1:
        epochs, seconds = training_cost(metrics)
        cost = (f"{len(cycles)} training cycles of " + ", ".join(_cycle_epochs(c) for c in cycles)
                + f" epochs, each after the first a warm restart: {epochs} epochs, {seconds / 3600:.2f} h in all on "
                + " and ".join(hardware))
    content = f"""---
{data.to_yaml()}
---

# {name}: facial expression recognition on FER-2013

`{config.architecture}` trained from scratch on FER-2013 by this project's `train.py`. It takes a
{IMAGE_SIZE}x{IMAGE_SIZE} grayscale face (raw 0-255 pixels; preprocessing is inside the model) and returns
probabilities for {", ".join(EMOTIONS)}. Each prediction is {tta}.

## Results on the FER-2013 PublicTest split ({test.n} faces)

Accuracy **{test.accuracy:.4f}**, macro F1 **{test.macro_f1:.4f}**. Checkpoint chosen on a seeded,
stratified {c['val_fraction']:.0%} validation slice of the training set (validation accuracy
{metrics['validation']['accuracy']:.4f}); the test split was used for this report only.

| emotion | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

![confusion matrix](confusion_matrix.png)

![training curves](training_curves.png)

Reproduce the numbers: `python -m fer evaluate --model {name} --data PATH/TO/fer2013`

## Training

{cost}; {metrics['parameters']:,} parameters;
{metrics['latency_ms']:.1f} ms to score one face on {metrics.get('latency_on', DEFAULT_HARDWARE)} (batch of one, test-time augmentation included).
AdamW (peak learning rate {c['learning_rate']}, {c['schedule']} schedule, weight decay {c['weight_decay']}),
batch {c['batch_size']}, label smoothing {c['label_smoothing']}, class weights `{c['class_weight']}`,
oversampling {c['oversample'] or 'off'}, augmentation {json.dumps(c['augment'])}, seed {c['seed']}.
The full config is in `config.json`, the per-epoch history in `history.csv`.

{_reproduce_model(config, metrics)}

## Intended use and limits

For research, teaching and demos of facial expression recognition. FER-2013 is mostly frontal faces
of adults scraped from the web, with noisy labels (human accuracy is about 65%); expect worse results on
children, profile views, occlusions and faces unlike that data. A facial expression is not a feeling:
the model scores how a face looks, not what a person feels. Do not use it for decisions about people
(hiring, policing, health, education, surveillance).
"""
    ModelCard(content)  # fails loudly if the metadata does not parse
    return content
