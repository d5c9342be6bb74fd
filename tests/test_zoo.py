"""Zoo entries: atomic export, integrity check, model cards that the Hub can parse."""

import json

import numpy as np
import pytest
from huggingface_hub import ModelCard

from conftest import FER2013, REPO, needs_fer2013, synthetic_faces
from fer.errors import UnknownModelError, ZooError
from fer.export import export_entry
from fer.metrics import compute_metrics
from fer.models import build_model
from fer.training import AVERAGE_RECORD, TrainConfig
from fer.zoo import list_entries, load_model, resolve_model_path


@pytest.fixture()
def entry(tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "history.csv").write_text("epoch,accuracy,loss\n0,0.5,1.0\n")
    config = TrainConfig(name="tiny", zoo_dir=str(tmp_path / "zoo"), output=str(tmp_path / "runs"), epochs=1)
    result = compute_metrics(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 2]))
    return export_entry(build_model("custom_cnn"), config, result, result, run_dir, train_seconds=12.0)


def test_exported_entry_lists_loads_and_predicts(entry):
    entries = list_entries(entry.parent)
    assert [e.name for e in entries] == ["tiny"]
    assert entries[0].metrics["parameters"] > 100_000
    model = load_model("tiny", zoo_dir=entry.parent)
    x, _ = synthetic_faces(1)
    assert model.predict(x[..., None], verbose=0).shape == (7, 7)


def test_model_card_metadata_parses_with_huggingface_hub(entry):
    card = ModelCard.load(entry / "README.md")
    assert card.data.library_name == "keras"
    assert card.data.pipeline_tag == "image-classification"
    assert "fer2013" in card.data.datasets
    metrics = {m["type"]: m["value"] for m in card.data.to_dict()["model-index"][0]["results"][0]["metrics"]}
    saved = json.loads((entry / "metrics.json").read_text())["test"]
    assert metrics == {"accuracy": round(saved["accuracy"], 4), "f1": round(saved["macro_f1"], 4)}
    assert "not a feeling" in card.text


def test_entries_store_half_precision_and_load_exactly_what_was_scored(tmp_path):
    import zipfile

    import h5py
    import keras

    from fer.export import round_to_stored_precision, save_network

    network = build_model("custom_cnn")
    network.save(tmp_path / "full.keras")
    x, _ = synthetic_faces(2)
    before = network.predict(x[..., None], verbose=0)
    assert round_to_stored_precision(network) > 10
    rounded = network.predict(x[..., None], verbose=0)
    save_network(network, tmp_path / "half.keras")

    with zipfile.ZipFile(tmp_path / "half.keras") as z, h5py.File(z.open("model.weights.h5"), "r") as f:
        dtypes = set()
        f.visititems(lambda _, item: dtypes.add(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert np.dtype(np.float32) not in dtypes and np.dtype(np.float16) in dtypes
    assert (tmp_path / "half.keras").stat().st_size < 0.6 * (tmp_path / "full.keras").stat().st_size
    loaded = keras.saving.load_model(tmp_path / "half.keras", compile=False)
    assert {w.dtype for w in loaded.weights} == {"float32"}  # stored in half, computed in float32
    np.testing.assert_array_equal(loaded.predict(x[..., None], verbose=0), rounded)
    assert np.abs(rounded - before).max() < 0.02  # rounding moves scores a little, the entry records them after it


def test_tampered_weights_are_refused(entry):
    with open(entry / "model.keras", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ZooError, match="sha256"):
        load_model("tiny", zoo_dir=entry.parent)


def test_half_written_entries_are_never_listed(entry):
    hidden = entry.parent / ".other.tmp-123"
    hidden.mkdir()
    (hidden / "metrics.json").write_text("{}")
    (entry.parent / "no_model").mkdir()
    (entry.parent / "no_model" / "metrics.json").write_text("{}")
    assert [e.name for e in list_entries(entry.parent)] == ["tiny"]
    with pytest.raises(UnknownModelError, match="tiny"):
        resolve_model_path(".other.tmp-123", zoo_dir=entry.parent)


def test_export_replaces_an_existing_entry(entry, tmp_path):
    config = TrainConfig(name="tiny", zoo_dir=str(entry.parent))
    result = compute_metrics(np.array([0, 1]), np.array([0, 1]))
    export_entry(build_model("custom_cnn"), config, result, result, tmp_path / "runs" / "tiny", train_seconds=1)
    assert json.loads((entry / "metrics.json").read_text())["test"]["accuracy"] == 1.0
    assert sorted(p.name for p in entry.parent.iterdir()) == ["manifest.json", "tiny"]


def _shipped():
    return [e.name for e in list_entries(REPO / "model_zoo")]


@needs_fer2013
@pytest.mark.parametrize("name", _shipped() or [pytest.param("none", marks=pytest.mark.skip("zoo is empty"))])
def test_shipped_model_reproduces_its_card(name):
    """The numbers in metrics.json and the card are what evaluate computes today. An entry that records its
    predictions on the test split (export does) is checked in two steps that cost a tenth of a full evaluation
    of a big model: the recorded predictions give exactly the recorded metrics, and the model predicts the same
    class for a seeded sample of 360 test faces today (one face may flip on a near tie)."""
    from fer.data import load_eval_split
    from fer.evaluation import evaluate_model, predict_scores
    from fer.metrics import compute_metrics

    entry = next(e for e in list_entries(REPO / "model_zoo") if e.name == name)
    model, split = load_model(name, zoo_dir=REPO / "model_zoo"), load_eval_split(FER2013)
    recorded = entry.metrics.get("test_predictions")
    if recorded is None:
        result = evaluate_model(model, split)
    else:
        predictions = entry.test_predictions
        result = compute_metrics(split.labels, predictions, split.source_name)
        assert result.confusion_matrix == entry.metrics["test"]["confusion_matrix"]
        sample = np.random.default_rng(0).choice(len(split.labels), 360, replace=False)
        today = predict_scores(model, split.images[sample]).argmax(axis=1)
        assert (today != predictions[sample]).sum() <= 1, "the model no longer predicts what it recorded"
    assert result.accuracy == pytest.approx(entry.metrics["test"]["accuracy"], abs=1e-4)
    assert result.macro_f1 == pytest.approx(entry.metrics["test"]["macro_f1"], abs=1e-4)
    card = ModelCard.load(entry.path / "README.md")
    assert f"{result.accuracy:.4f}" in card.text


def test_zoo_list_json_on_the_command_line(entry):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fer", "zoo", "list", "--json"], capture_output=True, text=True,
                         env={**os.environ, "FER_ZOO_DIR": str(entry.parent)}, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [e["name"] for e in listed] == ["tiny"]
    assert listed[0]["sha256"] == json.loads((entry / "metrics.json").read_text())["sha256"]


def test_report_compares_entries(entry, tmp_path):
    from fer.report import markdown_table, write_report

    entries = list_entries(entry.parent)
    path = write_report(entries, tmp_path / "report")
    text = path.read_text()
    assert "| `tiny` | **0.7500** |" in text
    assert markdown_table(entries) in text
    for image in ("f1_per_class.png", "confusion_matrices.png"):
        assert (tmp_path / "report" / image).stat().st_size > 5000


def test_zoo_report_readme_replaces_its_tables_and_nothing_else(entry, tmp_path, monkeypatch, capsys):
    from fer.cli import main
    from fer.report import cost_table, markdown_table

    entries = list_entries(entry.parent)
    readme = tmp_path / "README.md"
    stale = ("# Zoo\n\n| model | accuracy | MB |\n|---|---|---|\n| `old` | 0.1 | 9 |\n\ntext between\n\n"
             "| model | trained on |\n|---|---|\n| `old` | an abacus |\n\n| model | T |\n|---|---|\n| `old` | 1 |\n\n| other | table |\n|---|---|\n| kept | 1 |\n")
    readme.write_text(stale)
    monkeypatch.setenv("FER_ZOO_DIR", str(entry.parent))
    assert main(["zoo", "report", "--out", str(tmp_path / "report"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "`old`" not in text and markdown_table(entries) in text and cost_table(entries) in text
    assert "text between" in text and "| kept | 1 |" in text and text.startswith("# Zoo\n\n| model | accuracy |")
    assert main(["zoo", "report", "--out", str(tmp_path / "report"), "--readme", str(readme)]) == 0
    assert readme.read_text() == text, "updating twice changes nothing"
    readme.write_text(stale + "\n| model | trained on | again |\n|---|---|---|\n")
    assert main(["zoo", "report", "--out", str(tmp_path / "report"), "--readme", str(readme)]) == 2
    assert "Two tables headed | model | trained on |" in capsys.readouterr().err
    readme.write_text("# Zoo\n\n| model | trained on |\n|---|---|\n")
    assert main(["zoo", "report", "--out", str(tmp_path / "report"), "--readme", str(readme)]) == 2
    assert "No table headed | model | accuracy |" in capsys.readouterr().err


def test_the_report_compares_every_two_models_on_the_same_faces(tmp_path):
    from fer.report import paired_table
    from fer.zoo import ZooEntry

    labels = np.arange(98) % 7
    rng = np.random.default_rng(0)
    wrong = (labels + 1) % 7
    good = np.where(rng.random(len(labels)) < 0.9, labels, wrong)
    bad = np.where(rng.random(len(labels)) < 0.3, labels, wrong)
    zoo = tmp_path / "zoo"
    for name, predictions in [("good", good), ("bad", bad), ("unrecorded", None)]:
        metrics = {"test": compute_metrics(labels, good if predictions is None else predictions).to_dict()}
        if predictions is not None:
            metrics["test_predictions"] = "".join(map(str, predictions))
        (zoo / name).mkdir(parents=True)
        (zoo / name / "metrics.json").write_text(json.dumps(metrics))
    entries = [ZooEntry(n, zoo / n, json.loads((zoo / n / "metrics.json").read_text()))
               for n in ("bad", "good", "unrecorded")]
    table = paired_table(entries, labels).splitlines()
    assert len(table) == 3, "one pair: the entry without recorded predictions is left out"
    only_good = int(((good == labels) & (bad != labels)).sum())
    only_bad = int(((good != labels) & (bad == labels)).sum())
    difference = (only_good - only_bad) / len(labels)
    assert table[2].startswith(f"| `good` | `bad` | {difference:+.4f} | {only_good} | {only_bad} |")
    assert float(table[2].split("|")[-2]) < 1e-3, "0.9 against 0.3 right on 98 faces is told apart"
    # Predictions made on other faces of the same number (PublicTest and PrivateTest both hold 3,589) are left out.
    assert len(paired_table(entries, np.roll(labels, 1)).splitlines()) == 2


def test_the_report_scores_test_faces_also_in_training_apart(tmp_path):
    from fer.report import overlap_table
    from fer.zoo import ZooEntry

    labels = np.arange(14) % 7
    seen = np.arange(14) < 4
    predicted = np.where(seen | (np.arange(14) % 2 == 0), labels, (labels + 1) % 7)  # all 4 seen right, 5 of 10
    (tmp_path / "model").mkdir()
    metrics = {"test": compute_metrics(labels, predicted).to_dict(), "test_predictions": "".join(map(str, predicted))}
    table = overlap_table([ZooEntry("model", tmp_path / "model", metrics)], labels, seen).splitlines()
    assert table[2] == "| `model` | 14 | 0.6429 | 4 | 1.0000 | 10 | 0.5000 |"
    assert len(overlap_table([ZooEntry("model", tmp_path / "model", metrics)], np.roll(labels, 1), seen)
               .splitlines()) == 2, "predictions recorded on other faces are left out"


def test_recorded_predictions_are_digits_of_emotions():
    from fer.zoo import decode_predictions

    np.testing.assert_array_equal(decode_predictions("0615"), [0, 6, 1, 5])
    for bad in ("0617", "06 1", "06\n"):
        with pytest.raises(ZooError, match="digits 0-6"):
            decode_predictions(bad)


def test_manifest_lists_entries_with_hash_and_metrics(entry):
    from fer.zoo import read_manifest

    manifest = read_manifest(entry.parent)
    assert list(manifest) == ["tiny"]
    saved = json.loads((entry / "metrics.json").read_text())
    assert manifest["tiny"]["sha256"] == saved["sha256"]
    assert manifest["tiny"]["metrics"]["accuracy"] == saved["test"]["accuracy"]
    assert manifest["tiny"]["hub"] == {"repo_id": None, "revision": None}


def test_push_then_load_from_the_hub_with_the_real_client(entry, tmp_path, monkeypatch):
    import shutil

    from hub_standin import HubStandIn

    from fer.calibration import Calibration
    from fer.export import record_calibration
    from fer.zoo import MANIFEST_FILE, push_entry, read_calibration, read_manifest

    record_calibration(entry, Calibration(0.5, 0.4))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    with HubStandIn() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        info = push_entry("tiny", "someone/fer-tiny", zoo_dir=entry.parent)
        pinned = read_manifest(entry.parent)["tiny"]["hub"]
        assert pinned == {"repo_id": "someone/fer-tiny", "revision": info.oid}
        head = hub.heads["someone/fer-tiny"]
        assert set(hub.repos["someone/fer-tiny"][head]) >= {"model.keras", "README.md", "metrics.json"}

        # A zoo that has only the manifest (as on a Space) downloads the pinned revision.
        remote_zoo = tmp_path / "remote_zoo"
        remote_zoo.mkdir()
        shutil.copy(entry.parent / MANIFEST_FILE, remote_zoo / MANIFEST_FILE)
        model = load_model("tiny", zoo_dir=remote_zoo)
        assert model.output_shape == (None, 7)
        downloads = [p for m, p in hub.requests if m == "GET"]
        assert downloads

    # The server is gone: the cache answers, with the temperature the manifest pins.
    assert load_model("tiny", zoo_dir=remote_zoo).output_shape == (None, 7)
    assert read_calibration("tiny", zoo_dir=remote_zoo).temperature == 0.5

    # A manifest whose temperature, or whose hash, does not match the published weights is refused.
    manifest = json.loads((remote_zoo / MANIFEST_FILE).read_text())
    manifest["models"][0]["calibration"]["temperature"] = 1.0
    (remote_zoo / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ZooError, match="calibration of tiny"):
        load_model("tiny", zoo_dir=remote_zoo)
    manifest["models"][0]["calibration"]["temperature"] = 0.5
    manifest["models"][0]["sha256"] = "0" * 64
    (remote_zoo / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ZooError, match="sha256"):
        load_model("tiny", zoo_dir=remote_zoo)


def test_readme_results_table_is_the_zoo_report():
    """The README shows exactly what `python -m fer zoo report` prints for the shipped zoo (results, ensemble
    members, calibration, cost)."""
    from fer.report import calibration_table, cost_table, markdown_table, selection_table
    from fer.zoo import ensemble_record

    entries = list_entries(REPO / "model_zoo")
    if not entries:
        pytest.skip("the zoo is empty")
    readme = (REPO / "README.md").read_text()
    assert markdown_table(entries) in readme
    assert cost_table(entries) in readme
    record = ensemble_record(REPO / "model_zoo") or {}
    assert calibration_table(entries, record.get("calibration")) in readme
    if FER2013.is_dir():
        from fer.data import load_eval_split, load_training_faces, seen_in
        from fer.report import overlap_table, paired_table

        test = load_eval_split(FER2013)
        assert paired_table(entries, test.labels, record) in readme
        assert overlap_table(entries, test.labels, seen_in(load_training_faces(FER2013), test.images), record) in readme
    if record.get("selection"):
        assert selection_table(record["selection"]) in readme


def test_a_chain_of_warm_restarts_counts_every_cycle_and_prints_every_command(entry, tmp_path):
    """Each cycle exported from the one before: the card totals all cycles and gives one command each."""
    from fer.zoo import training_cost

    model = build_model("custom_cnn")
    result = compute_metrics(np.array([0, 1]), np.array([0, 1]))
    previous = entry
    for cycle, (epochs, lr) in enumerate([(3, 5e-4), (4, 3e-4)], 2):
        run_dir = tmp_path / "runs" / f"cycle{cycle}"
        run_dir.mkdir(parents=True)
        (run_dir / "history.csv").write_text("epoch\n" + "".join(f"{e}\n" for e in range(epochs)))
        averaged = cycle == 2  # this cycle kept the mean of its last 2 epochs: the next starts from it
        if averaged:
            (run_dir / AVERAGE_RECORD).write_text(json.dumps({
                "epochs": [2, 3], "validation_accuracy": {"best_epoch": 0.5, "average": 0.6}, "chosen": "average"}))
        config = TrainConfig(name=f"tiny{cycle}", zoo_dir=str(tmp_path / "zoo"), epochs=epochs, learning_rate=lr,
                             init_from=str(previous / "model.keras"), average_last=2 if averaged else 0)
        previous = export_entry(model, config, result, result, run_dir, train_seconds=100.0 * cycle)

    metrics = json.loads((previous / "metrics.json").read_text())
    assert training_cost(metrics) == (1 + 3 + 4, 12.0 + 200.0 + 300.0)
    card = (previous / "README.md").read_text()
    assert "3 training cycles of 1, 3, 4 epochs" in card
    commands = [line for line in card.splitlines() if line.startswith("python train.py")]
    assert commands == [
        "python train.py --arch custom_cnn --data PATH/TO/fer2013 --name tiny3_cycle1 --epochs 1 --no-export",
        "python train.py --arch custom_cnn --data PATH/TO/fer2013 --name tiny3_cycle2 --epochs 3 --lr 0.0005 "
        "--average-last 2 --init-from runs/tiny3_cycle1/best.keras --no-export",
        "python train.py --arch custom_cnn --data PATH/TO/fer2013 --name tiny3 --epochs 4 --lr 0.0003 "
        "--init-from runs/tiny3_cycle2/average.keras",
    ]
    cycle2_card = (tmp_path / "zoo" / "tiny2" / "README.md").read_text()
    assert "The weights are the mean of the weights after epochs 2-3" in cycle2_card


def test_a_cycle_from_a_run_trained_elsewhere_and_stopped_early_says_so(tmp_path):
    """A warm restart from a run folder that was never exported (trained on a GPU machine, cut short)."""
    model = build_model("custom_cnn")
    result = compute_metrics(np.array([0, 1]), np.array([0, 1]))
    gpu_run = tmp_path / "runs" / "gpu"
    gpu_run.mkdir(parents=True)
    (gpu_run / "config.json").write_text(json.dumps(TrainConfig(epochs=30, batch_size=256).to_dict()))
    (gpu_run / "history.csv").write_text("epoch,epoch_seconds\n" + "".join(f"{e},12.5\n" for e in range(22)))
    (gpu_run / "hardware.txt").write_text("one Example GPU\n")
    run_dir = tmp_path / "runs" / "cpu"
    run_dir.mkdir()
    (run_dir / "history.csv").write_text("epoch,epoch_seconds\n0,300\n1,300\n")
    config = TrainConfig(name="two_machines", zoo_dir=str(tmp_path / "zoo"), epochs=2,
                         init_from=str(gpu_run / "best.keras"))
    exported = export_entry(model, config, result, result, run_dir, train_seconds=600.0)

    card = (exported / "README.md").read_text()
    assert "2 training cycles of 22 (stopped early, of 30 planned), 2 epochs" in card
    assert "24 epochs, 0.24 h in all on one Example GPU and a 2-core CPU" in card
    assert "--epochs 30 --batch-size 256" in card


def test_training_cost_reads_hours_and_milestones_from_the_history(tmp_path):
    """Hours accumulate epoch_seconds; a warm restart's curve starts after its earlier cycles, and a milestone it
    met in its first epoch (reached before this cycle) is not credited to it."""
    from fer.report import TrainingCurve, cost_table
    from fer.zoo import ZooEntry

    def entry(name, rows, metrics):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.csv").write_text(
            "epoch,epoch_seconds,val_accuracy\n" + "".join(f"{i},{s},{a}\n" for i, (s, a) in enumerate(rows)))
        return ZooEntry(name, tmp_path / name, {"epochs": len(rows), "train_seconds": sum(s for s, _ in rows),
                                                **metrics})

    scratch = entry("scratch", [(1800, 0.50), (1800, 0.61), (3600, 0.66)], {})
    curve = TrainingCurve.of(scratch)
    np.testing.assert_allclose(curve.hours, [0.5, 1.0, 2.0])
    assert (curve.hours_to(0.60), curve.hours_to(0.65), curve.hours_to(0.70)) == (1.0, 2.0, None)

    warm = entry("warm", [(3600, 0.62), (3600, 0.66)], {"init": {"epochs": 10, "train_seconds": 7200}})
    curve = TrainingCurve.of(warm)
    np.testing.assert_allclose(curve.hours, [3.0, 4.0])
    assert (curve.hours_to(0.60), curve.hours_to(0.65)) == (None, 4.0)

    table = cost_table([scratch, warm])
    assert "| `scratch` | a 2-core CPU | 3 | 2.00 | 0.6600 | 1.00 | 2.00 | 0.6100 |" in table
    assert "| `warm` | a 2-core CPU | 12 | 4.00 | 0.6600 | - | 4.00 | - |" in table
