"""The model zoo, read side: list entries, verify them, load their models (locally or from the Hub).

An entry ``model_zoo/<name>/`` holds ``model.keras`` (the bare network), ``metrics.json`` (its
architecture, the test-time augmentation to wrap it in, its calibration (temperature and uncertain
threshold, sealed by a digest bound to the weights), test and validation scores, training cost,
sha256 of the weights), ``config.json`` (the run that made it), ``confusion_matrix.png``,
``training_curves.png`` and ``README.md`` (a Hugging Face model card). ``fer.export`` writes entries;
this module never imports the training side. Folders whose names start with ``.`` (half-written
entries) are never listed or loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fer.calibration import Calibration
from fer.ensemble import ENSEMBLE, MIN_MEMBERS, ensemble_model, has_ensemble
from fer.errors import UnknownModelError, ZooError
from fer.labels import EMOTIONS
from fer.metrics import EvaluationResult

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
# The manifest's ensemble record: these fields, then its Calibration.
ENSEMBLE_ONLY_FIELDS = ("members", "selection", "test_predictions")
REPO_ROOT = Path(__file__).resolve().parent.parent


def decode_predictions(recorded: str) -> np.ndarray:
    """Predicted class ids from the string of digits export records (fer.export.prediction_record)."""
    predictions = np.frombuffer(recorded.encode(), np.uint8).astype(np.int64) - ord("0")
    if len(predictions) and not 0 <= predictions.min() <= predictions.max() < len(EMOTIONS):
        raise ZooError(f"Recorded test predictions must be digits 0-{len(EMOTIONS) - 1}: re-export the entry.")
    return predictions


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
    def tta(self) -> str:
        """The test-time augmentation the network is wrapped in when loaded (see fer.models.with_tta)."""
        return self.metrics.get("tta", "none")

    @property
    def test(self) -> EvaluationResult:
        return EvaluationResult.from_dict(self.metrics["test"])

    @property
    def test_predictions(self) -> np.ndarray | None:
        """The class the model predicted for each test face, in split order, as export recorded it (None for an
        entry exported before export recorded them)."""
        recorded = self.metrics.get("test_predictions")
        return None if recorded is None else decode_predictions(recorded)

    @property
    def calibration(self) -> Calibration | None:
        """The fitted temperature and uncertain threshold (None: never calibrated, scores used as they are)."""
        record = self.metrics.get("calibration")
        return Calibration.from_dict(record) if record else None

    @property
    def fingerprint(self) -> str:
        """What pins this entry's scores: its calibration's digest (which covers the weights), else the
        weights' sha256."""
        calibration = self.calibration
        return calibration.sha256 if calibration else self.metrics.get("sha256")

    def verify(self, calibration: bool = True) -> None:
        """Refuse weights whose sha256 differs from the one recorded at export, and (unless ``calibration`` is
        False) a calibration whose digest does not seal this temperature and threshold to these weights."""
        expected = self.metrics.get("sha256")
        if not self.model_file.is_file():
            raise ZooError(f"Zoo entry {self.path} has no {MODEL_FILE}: re-export it with train.py.")
        actual = sha256_of(self.model_file)
        if expected != actual:
            raise ZooError(f"{self.model_file} does not match its recorded sha256 ({actual[:12]}... != "
                           f"{str(expected)[:12]}...): the file is corrupt or was replaced. Restore it "
                           "(git checkout / re-download) or re-export the entry.")
        if calibration:
            verify_calibration(self.name, self.calibration, actual)


def verify_calibration(name: str, calibration: Calibration | None, weights_sha256: str) -> None:
    """Refuse a temperature or threshold that its digest does not seal to these weights."""
    if calibration is not None and not calibration.matches(weights_sha256):
        raise ZooError(f"The calibration of {name} (temperature {calibration.temperature}, uncertain threshold "
                       f"{calibration.uncertain_threshold}) does not match its recorded sha256: it was edited or "
                       f"belongs to other weights. Restore metrics.json (git checkout / re-download) or refit it "
                       f"with python -m fer zoo calibrate {name} --data PATH.")


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
            "tta": entry.tta, "hub": published,
            "calibration": _calibration_summary(entry.calibration),
            "metrics": {"accuracy": m["test"]["accuracy"], "macro_f1": m["test"]["macro_f1"]},
        })
    return records


def _calibration_summary(calibration: Calibration | None) -> dict | None:
    """What a model loaded from the manifest alone needs of its calibration (the digest included)."""
    if calibration is None:
        return None
    return {"temperature": calibration.temperature, "uncertain_threshold": calibration.uncertain_threshold,
            "target_accuracy": calibration.target_accuracy, "sha256": calibration.sha256}


def write_manifest(zoo_dir: Path | None = None, hub: dict[str, dict] | None = None,
                   ensemble: dict | None = None) -> Path:
    """Rewrite manifest.json from the zoo's entries (see manifest_records) and the ensemble's calibration
    (``ensemble``, else the existing one while its members are unchanged). Written atomically."""
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    path = zoo_dir / MANIFEST_FILE
    old_ensemble = json.loads(path.read_text()).get(ENSEMBLE) if path.is_file() else None
    records = manifest_records(zoo_dir, hub)
    ensemble = ensemble or old_ensemble
    if ensemble and not _members_current(ensemble["members"], {r["name"]: _record_fingerprint(r) for r in records}):
        log.info("The ensemble's record is dropped from the manifest: a member changed or left the zoo (choose "
                 "and calibrate it again with python -m fer zoo calibrate ensemble --data PATH).")
        ensemble = None
    manifest = {"models": records, **({ENSEMBLE: ensemble} if ensemble else {})}
    tmp = zoo_dir / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _record_fingerprint(record: dict) -> str:
    """A manifest record's ZooEntry.fingerprint."""
    return (record.get("calibration") or {}).get("sha256") or record["sha256"]


def ensemble_binding(members: dict[str, str]) -> str:
    """What an ensemble's calibration is sealed to: its members' fingerprints, by name."""
    return json.dumps(members, sort_keys=True)


def _members_current(members: dict[str, str], current: dict[str, str]) -> bool:
    """Whether every member (name: fingerprint) is in the zoo (``current``, name: fingerprint) unchanged."""
    return all(current.get(name) == fingerprint for name, fingerprint in members.items())


def available_models(zoo_dir: Path | None = None) -> list[str]:
    """The models a zoo offers: its local entries, then those only its manifest names, published on the Hub."""
    local = [e.name for e in list_entries(zoo_dir)]
    return local + [n for n, m in read_manifest(zoo_dir).items() if m["hub"].get("repo_id") and n not in local]


def ensemble_record(zoo_dir: Path | None = None) -> dict | None:
    """The manifest's ensemble record (its members, chosen on validation, and their calibration) while every
    member is offered (see available_models) unchanged; None when there is none, and a warning when it no longer
    holds. A record whose members or calibration were edited since it was sealed is refused; its ``selection``
    and ``test_predictions`` (for the report only) are not sealed."""
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    path = zoo_dir / MANIFEST_FILE
    record = json.loads(path.read_text()).get(ENSEMBLE) if path.is_file() else None
    if not record:
        return None
    offered = set(available_models(zoo_dir))
    current = {name: _record_fingerprint(r) for name, r in read_manifest(zoo_dir).items() if name in offered}
    current.update({e.name: e.fingerprint for e in list_entries(zoo_dir)})
    if not _members_current(record["members"], current):
        log.warning("The ensemble in %s was chosen and calibrated for other members: it averages every zoo model, "
                    "with no uncertain threshold, until python -m fer zoo calibrate ensemble --data PATH runs.", path)
        return None
    calibration = Calibration.from_dict({k: v for k, v in record.items() if k not in ENSEMBLE_ONLY_FIELDS})
    verify_calibration(ENSEMBLE, calibration, ensemble_binding(record["members"]))  # the members are sealed too
    return {**record, "calibration": calibration}


def read_ensemble_calibration(zoo_dir: Path | None = None) -> Calibration | None:
    """The ensemble's temperature and uncertain threshold (fitted by ``python -m fer zoo calibrate ensemble``) if
    the manifest holds them for members still in the zoo unchanged (see ensemble_record)."""
    record = ensemble_record(zoo_dir)
    return record["calibration"] if record else None


@dataclass
class ModelSummary:
    """What choosing a model needs: its architecture, test accuracy and macro F1 (None: not measured), and
    its calibration, the temperature its scores are divided by and the top score below which a face is
    called uncertain (None: uncalibrated). ``members``: the models the ensemble averages (None otherwise)."""

    name: str
    architecture: str
    test_accuracy: float | None
    test_macro_f1: float | None
    temperature: float | None
    uncertain_threshold: float | None
    members: list[str] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def summarize_zoo(zoo_dir: Path | None = None) -> list[ModelSummary]:
    """One summary per model in the manifest, then the ensemble when there are MIN_MEMBERS models or more (its
    accuracy and threshold from its verified calibration, when it has one)."""
    summaries = []
    for name, record in read_manifest(zoo_dir).items():
        calibration = record.get("calibration") or {}
        summaries.append(ModelSummary(name, record["architecture"], record["metrics"]["accuracy"],
                                      record["metrics"]["macro_f1"], calibration.get("temperature"),
                                      calibration.get("uncertain_threshold")))
    if has_ensemble(summaries):
        record = ensemble_record(zoo_dir)  # read once: its members and its calibration
        members = [s.name for s in summaries if record is None or s.name in record["members"]]
        calibration = record["calibration"] if record else None
        test = calibration.test if calibration else None
        summaries.append(ModelSummary(ENSEMBLE, f"mean of {len(members)} models' calibrated probabilities",
                                      test.calibrated.accuracy if test else None, None,
                                      calibration.temperature if calibration else None,
                                      calibration.uncertain_threshold if calibration else None, members))
    return summaries


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


def architecture_of(name: str, zoo_dir: Path | None = None) -> str:
    """The architecture of zoo model ``name``: from its local entry, else from the manifest."""
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    if (zoo_dir / name / METRICS_FILE).is_file():
        return read_entry(zoo_dir / name).architecture
    if name in (manifest := read_manifest(zoo_dir)):
        return manifest[name]["architecture"]
    raise UnknownModelError(f"No model named {name!r} in the zoo {zoo_dir}.")


@dataclass
class Located:
    """A verified model file and how its entry says to score with it."""

    path: Path
    tta: str = "none"
    calibration: Calibration | None = None


def _locate(model: str, zoo_dir: Path | None = None, calibration: bool = True) -> Located:
    """The verified model file for a zoo name, an entry folder or a model file path, the test-time
    augmentation its entry asks for and its calibration (none for a bare file).

    A name resolves to the local ``model_zoo/<name>/`` first, then to the Hub repo and revision the
    manifest pins (cache, then download); either way the file's sha256, and the calibration's digest, are
    checked before use (``calibration=False``: the raw scores are wanted, the calibration is neither checked nor
    returned).
    """
    zoo_dir = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    candidate = Path(model)
    if candidate.is_file():
        return Located(candidate)
    entry_dir = candidate if candidate.is_dir() else zoo_dir / model
    if candidate.is_dir() or (not model.startswith(".") and (entry_dir / METRICS_FILE).is_file()):
        entry = read_entry(entry_dir)
        entry.verify(calibration)
        return Located(entry.model_file, entry.tta, entry.calibration if calibration else None)
    published = read_manifest(zoo_dir).get(model)
    if published and published["hub"].get("repo_id"):
        record = Calibration.from_dict(published["calibration"]) if calibration and published.get("calibration") \
            else None
        verify_calibration(model, record, published["sha256"])
        return Located(_download_from_hub(model, published["hub"], published["sha256"]),
                       published.get("tta", "none"), record)
    names = [e.name for e in list_entries(zoo_dir)]
    raise UnknownModelError(f"No model named {model!r}: use a zoo entry ({', '.join(names) or 'the zoo is empty'}), "
                            "an entry folder or a .keras file.")


def resolve_model_path(model: str, zoo_dir: Path | None = None) -> Path:
    """The verified model file for a zoo name, an entry folder or a model file path (see _locate)."""
    return _locate(model, zoo_dir).path


def read_calibration(model: str, zoo_dir: Path | None = None) -> Calibration | None:
    """The verified calibration of a zoo name, an entry folder or a model file (None: uncalibrated, T = 1);
    for ``ensemble``, its own temperature and uncertain threshold (see read_ensemble_calibration)."""
    if model == ENSEMBLE and not Path(model).exists():
        return read_ensemble_calibration(zoo_dir)
    return _locate(model, zoo_dir).calibration


def load_network(model: str, zoo_dir: Path | None = None):
    """The bare network of a zoo name, entry folder or .keras file (Keras safe mode on): what Grad-CAM
    explains and a warm restart starts from."""
    import keras

    import fer.models  # noqa: F401  (registers the package's layers for loading)

    return keras.saving.load_model(resolve_model_path(model, zoo_dir), safe_mode=True, compile=False)


def ensemble_members(zoo_dir: Path | None = None) -> list[str]:
    """The zoo entries the ensemble averages: those ``python -m fer zoo calibrate ensemble`` chose on validation
    (see ensemble_record), else every entry; refused when there are fewer than MIN_MEMBERS."""
    names = available_models(zoo_dir)
    if len(names) < MIN_MEMBERS:
        raise UnknownModelError(f"The ensemble needs at least {MIN_MEMBERS} zoo entries and the zoo has "
                                f"{len(names)}: train another model with train.py.")
    record = ensemble_record(zoo_dir)
    return [name for name in names if name in record["members"]] if record else names


def load_model(model: str, zoo_dir: Path | None = None, calibrated: bool = True):
    """The model that scores faces: the network in its entry's test-time augmentation, its probabilities
    temperature-scaled by the entry's calibration (``calibrated=False``: the raw scores, which calibration is
    fitted on); a .tflite file as a LiteModel; ``ensemble`` averaging its members (see ensemble_members), then
    scaled by its own temperature.
    An entry without a calibration scores with T = 1, and a warning says so."""
    import keras

    from fer.models import with_temperature, with_tta

    if model == ENSEMBLE and not Path(model).exists():
        members = {name: load_model(name, zoo_dir, calibrated) for name in ensemble_members(zoo_dir)}
        own = read_ensemble_calibration(zoo_dir) if calibrated else None
        return ensemble_model(members, own.temperature if own else 1.0)
    located = _locate(model, zoo_dir, calibration=calibrated)
    if located.path.suffix == ".tflite":
        from fer.lite import LiteModel

        return LiteModel(located.path)
    scorer = with_tta(keras.saving.load_model(located.path, safe_mode=True, compile=False), located.tta)
    if not calibrated:
        return scorer
    if located.calibration is None:
        log.warning("%s has no fitted temperature: its scores are used as they are (T = 1). Fit one with "
                    "python -m fer zoo calibrate NAME --data PATH.", model)
        return scorer
    return with_temperature(scorer, located.calibration.temperature)


DEFAULT_HARDWARE = "a 2-core CPU"  # entries exported before runs recorded their hardware trained on this one


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
