"""Calibrated scores: the metrics, temperature scaling that undoes over-confidence, one temperature applied the
same way by the library, the command line and the API, and a calibration sealed like the weights."""

import json

import numpy as np
import pytest

from conftest import APP_ZOO_TEMPERATURE, APP_ZOO_THRESHOLD, REPO, write_tree
from fer import calibration as calib
from fer.calibration import Calibration, apply_temperature
from fer.cli import main
from fer.errors import ZooError
from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES

EXAMPLE = REPO / "examples" / "fer2013_test_1_happy_surprise.jpg"  # two faces


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- the metrics --------------------------------------------------------------------------------------------


def test_metrics_on_a_hand_computed_case():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])  # right, wrong, right, right; each face alone in its bin
    assert calib.expected_calibration_error(probs, labels) == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    assert calib.negative_log_likelihood(probs, labels) == pytest.approx(-np.log([0.9, 0.2, 0.6, 0.7]).mean())
    assert calib.brier_score(probs, labels) == pytest.approx((0.02 + 1.28 + 0.32 + 0.18) / 4)
    # Two faces in one bin (0.93, 1]: accuracy 1/2 against mean confidence 0.96.
    same_bin = np.array([[0.95, 0.05], [0.97, 0.03]])
    assert calib.expected_calibration_error(same_bin, np.array([0, 1])) == pytest.approx(0.46)


def test_metrics_match_scikit_learn_and_a_plain_loop():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(NUM_CLASSES, 0.7), 500)
    labels = rng.integers(0, NUM_CLASSES, 500)
    assert calib.negative_log_likelihood(probs, labels) == pytest.approx(
        log_loss(labels, probs, labels=list(range(NUM_CLASSES))), rel=1e-9)
    brier = np.mean([sum((probs[i, k] - (labels[i] == k)) ** 2 for k in range(NUM_CLASSES)) for i in range(500)])
    assert calib.brier_score(probs, labels) == pytest.approx(brier)
    ece = 0.0
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    for b in range(15):
        in_bin = (confidence > b / 15) & (confidence <= (b + 1) / 15)
        if in_bin.any():
            ece += in_bin.mean() * abs((predicted[in_bin] == labels[in_bin]).mean() - confidence[in_bin].mean())
    assert calib.expected_calibration_error(probs, labels) == pytest.approx(ece)
    bins = calib.reliability_bins(probs, labels)
    assert sum(bins.count) == 500 and len(bins.count) == calib.NUM_BINS


# --- temperature scaling ------------------------------------------------------------------------------------


def _perfectly_calibrated(n: int = 4000, seed: int = 0):
    """Logits and labels drawn from softmax(logits): softmax(logits) is calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, NUM_CLASSES))
    labels = np.array([rng.choice(NUM_CLASSES, p=p) for p in _softmax(logits)])
    return logits, labels


def test_logits_scaled_by_five_get_a_temperature_near_five_and_a_lower_ece():
    logits, labels = _perfectly_calibrated()
    over_confident = _softmax(5 * logits)
    t = calib.fit_temperature(over_confident, labels)
    assert t == pytest.approx(5, rel=0.1)
    calibrated = apply_temperature(over_confident, t)
    before, after = calib.ScoreQuality.measure(over_confident, labels), calib.ScoreQuality.measure(calibrated, labels)
    assert after.ece < 0.03 < before.ece
    assert after.nll < before.nll and after.brier < before.brier
    assert after.accuracy == before.accuracy, "temperature scaling never changes the top emotion"
    # The other way round: an under-confident model is sharpened.
    assert calib.fit_temperature(_softmax(logits / 3), labels) == pytest.approx(1 / 3, rel=0.1)


def test_the_temperature_is_the_one_with_the_lowest_validation_ece():
    # Label smoothing's shape: every score pulled a tenth of the way to uniform, so the top is capped at 0.91
    # while the middle is over-confident; no temperature straightens that curve everywhere.
    logits, labels = _perfectly_calibrated(seed=1)
    smoothed = 0.9 * _softmax(1.5 * logits) + 0.1 / NUM_CLASSES
    t = calib.fit_temperature(smoothed, labels)

    def ece(temperature):
        return calib.expected_calibration_error(apply_temperature(smoothed, temperature), labels)

    assert ece(t) <= min(ece(other) for other in np.arange(0.2, 3.0, 0.05))
    assert ece(t) < ece(1.0), "a fitted temperature never raises the ECE of the scores it was fitted on"
    assert round(t / calib.TEMPERATURE_STEP) * calib.TEMPERATURE_STEP == pytest.approx(t)


def test_the_keras_layer_is_the_numpy_transform():
    import keras

    from fer.models import build_model, with_temperature, with_tta

    keras.utils.set_random_seed(3)
    model = with_tta(build_model("custom_cnn"), "flip")
    faces = np.random.default_rng(1).integers(0, 256, (5, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")
    raw = model.predict(faces, verbose=0)
    scaled = with_temperature(model, 0.3).predict(faces, verbose=0)
    np.testing.assert_allclose(scaled, apply_temperature(raw, 0.3), atol=1e-5)
    assert np.abs(scaled - raw).max() > 1e-3
    assert with_temperature(model, 1.0) is model


def test_the_uncertain_threshold_is_the_lowest_that_reaches_the_target():
    # Top scores 0.95 ... 0.5, the fourth and sixth wrong: 4 of 6 right from 0.5, 4 of 5 from 0.51 on.
    top = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    probs = np.stack([top, 1 - top], axis=1)
    labels = np.array([0, 0, 0, 1, 0, 1])
    assert calib.choose_threshold(probs, labels, target_accuracy=0.8) == 0.51
    selective = calib.Selective.measure(probs, labels, 0.51)
    assert (selective.coverage, selective.accuracy) == (5 / 6, 0.8)
    assert calib.choose_threshold(probs, labels, target_accuracy=0.5) == 0.0
    assert calib.choose_threshold(probs, np.ones(6, int), target_accuracy=0.8) == 1.0, "never reached: all uncertain"


# --- an over-confident model through the zoo ----------------------------------------------------------------

BAND = IMAGE_SIZE // NUM_CLASSES
BAR_BRIGHTNESS, NOISE = 3.0, 25.0
# The Bayes-optimal logit of a class is its bar region's mean brightness (0-1 units) times this: the model
# that uses it is about calibrated, five times it is over-confident.
CALIBRATED_SCALE = (BAR_BRIGHTNESS / 255) / (NOISE / 255) ** 2 * (BAND - 2) * (IMAGE_SIZE - 12)


def _hard_faces(n_per_class: int, seed: int):
    """Faces whose class is a faint bar at a class-specific height: noisy enough that a model errs."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(NUM_CLASSES):
        for _ in range(n_per_class):
            img = rng.normal(90, NOISE, (IMAGE_SIZE, IMAGE_SIZE))
            img[label * BAND + 1:label * BAND + BAND - 1, 6:-6] += BAR_BRIGHTNESS
            images.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def bar_reader(scale: float):
    """A hand-built network: the mean brightness of each class's bar region, times ``scale``, softmaxed."""
    import keras

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(NUM_CLASSES, IMAGE_SIZE, use_bias=False, name="bars")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="scores")(x), name="bar_reader")
    kernel = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 1, NUM_CLASSES), np.float32)
    for c in range(NUM_CLASSES):
        region = kernel[c * BAND + 1:c * BAND + BAND - 1, 6:-6, 0, c]
        region[:] = scale / region.size
    model.get_layer("bars").set_weights([kernel])
    return model


@pytest.fixture(scope="module")
def bar_zoo(tmp_path_factory):
    """A zoo of two bar readers, one about calibrated (x1) and one over-confident (x5, logits scaled by five),
    and the data they were 'trained' on (Kaggle layout)."""
    from fer.data import load_eval_split
    from fer.evaluation import predict_scores
    from fer.export import export_entry
    from fer.metrics import compute_metrics
    from fer.training import TrainConfig

    root = tmp_path_factory.mktemp("bars")
    x, y = _hard_faces(150, seed=1)
    write_tree(root / "data" / "train", x, y)
    x, y = _hard_faces(40, seed=2)
    write_tree(root / "data" / "test", x, y)
    (root / "run").mkdir()
    result = compute_metrics(np.arange(7), np.arange(7))
    test = load_eval_split(root / "data")
    for name, factor in (("x1", 1), ("x5", 5)):
        config = TrainConfig(name=name, zoo_dir=str(root / "zoo"), val_fraction=0.1, seed=0)
        model = bar_reader(CALIBRATED_SCALE * factor)
        predicted = predict_scores(model, test.images).argmax(axis=1)
        export_entry(model, config, compute_metrics(test.labels, predicted), result, root / "run", train_seconds=1,
                     test_predictions=predicted)
    return root / "zoo", root / "data"


def _calibrate(name, zoo, data, monkeypatch, capsys):
    monkeypatch.setenv("FER_ZOO_DIR", str(zoo))
    assert main(["zoo", "calibrate", name, "--data", str(data)]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_over_confident_model_gets_a_temperature_above_one_and_a_lower_ece(bar_zoo, monkeypatch, capsys):
    zoo, data = bar_zoo
    fitted = _calibrate("all", zoo, data, monkeypatch, capsys)
    assert set(fitted) == {"x1", "x5", "ensemble"}
    x1, x5 = fitted["x1"], fitted["x5"]
    assert x5["temperature"] > 2
    # Scaling the logits by five scales the fitted temperature by five: the same calibrated scores.
    assert x5["temperature"] == pytest.approx(5 * x1["temperature"], rel=0.02)
    for split in ("validation", "test"):
        assert x5[split]["calibrated"]["ece"] < x5[split]["raw"]["ece"] - 0.1
        assert x5[split]["calibrated"]["nll"] < x5[split]["raw"]["nll"]
        assert x5[split]["calibrated"]["accuracy"] == x5[split]["raw"]["accuracy"]
    assert x5["validation"]["n"] == 105 and x5["test"]["n"] == 280, "fitted on the validation slice, not on test"
    assert 0.3 < x5["validation"]["raw"]["accuracy"] < 0.95, "the faces are hard enough for calibration to matter"

    from fer.zoo import list_entries, load_model, read_calibration, read_ensemble_calibration

    entry = next(e for e in list_entries(zoo) if e.name == "x5")
    assert entry.calibration.temperature == x5["temperature"]
    assert "## Calibration" in (entry.path / "README.md").read_text()
    assert (entry.path / "reliability_diagram.png").stat().st_size > 5000
    # The loaded model is the calibrated one.
    faces = _hard_faces(2, seed=9)[0][..., None].astype("float32")
    raw = load_model("x5", zoo, calibrated=False).predict(faces, verbose=0)
    np.testing.assert_allclose(load_model("x5", zoo).predict(faces, verbose=0),
                               apply_temperature(raw, x5["temperature"]), atol=1e-5)
    assert read_calibration("x5", zoo).sha256 == entry.calibration.sha256
    assert read_ensemble_calibration(zoo).uncertain_threshold == fitted["ensemble"]["uncertain_threshold"]

    # The ensemble's own temperature: fitted on the mean of its calibrated members' validation scores.
    from fer.data import load_dataset
    from fer.evaluation import score_calibrated

    val = load_dataset(data, val_fraction=0.1, seed=0).val
    mean = np.mean([score_calibrated(n, val.images, zoo).calibrated for n in ("x1", "x5")], axis=0)
    assert fitted["ensemble"]["temperature"] == calib.fit_temperature(mean, val.labels)
    assert read_ensemble_calibration(zoo).temperature == fitted["ensemble"]["temperature"]


def test_refitting_is_idempotent(bar_zoo, monkeypatch, capsys):
    zoo, data = bar_zoo
    _calibrate("x5", zoo, data, monkeypatch, capsys)
    files = ["x5/metrics.json", "x5/README.md", "x5/reliability_diagram.png", "manifest.json"]
    before = {f: (zoo / f).read_bytes() for f in files}
    _calibrate("x5", zoo, data, monkeypatch, capsys)
    assert {f: (zoo / f).read_bytes() for f in files} == before


def test_the_report_shows_calibration_and_one_reliability_figure(bar_zoo, monkeypatch, capsys, tmp_path):
    zoo, data = bar_zoo
    _calibrate("all", zoo, data, monkeypatch, capsys)
    assert main(["zoo", "report", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    report = (tmp_path / "REPORT.md").read_text()
    for name in ("x1", "x5", "ensemble"):
        assert f"| `{name}` |" in printed.split("| model | T |")[1]
    assert "| model | T | accuracy | ECE raw | ECE calibrated |" in report
    assert "## Ensemble" in report and "| `x1` + `x5` | **" in report, "how its members were chosen"
    assert "![reliability diagrams" in report and (tmp_path / "reliability.png").stat().st_size > 10_000

    # calibrate ensemble recorded the ensemble's answer on each test face: the one the loaded ensemble gives.
    from fer.data import load_eval_split
    from fer.evaluation import predict_scores
    from fer.zoo import decode_predictions, load_model

    test = load_eval_split(data)
    recorded = decode_predictions(json.loads((zoo / "manifest.json").read_text())["ensemble"]["test_predictions"])
    np.testing.assert_array_equal(recorded, predict_scores(load_model("ensemble", zoo), test.images).argmax(axis=1))
    assert main(["zoo", "report", "--out", str(tmp_path), "--data", str(data)]) == 0
    paired = (tmp_path / "REPORT.md").read_text().split("## Paired comparison")[1].split("\n## ")[0]
    rows = [line for line in paired.splitlines() if line.startswith("| `")]
    assert len(rows) == 3 and sum("`ensemble`" in row for row in rows) == 2, "each of three models against the others"


def test_evaluate_json_reports_raw_and_calibrated_scores(bar_zoo, monkeypatch, capsys):
    from fer.data import load_eval_split
    from fer.evaluation import predict_scores
    from fer.zoo import load_model

    zoo, data = bar_zoo
    fitted = _calibrate("x5", zoo, data, monkeypatch, capsys)["x5"]
    assert main(["evaluate", "--model", "x5", "--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "n", "labels", "per_class", "confusion_matrix", "split"} < set(out)
    block = out["calibration"]
    assert block["temperature"] == fitted["temperature"] and block["fitted"] is True
    split = load_eval_split(data)
    raw = predict_scores(load_model("x5", zoo, calibrated=False), split.images)
    assert block["raw"]["ece"] == pytest.approx(calib.expected_calibration_error(raw, split.labels), abs=1e-6)
    calibrated = apply_temperature(raw, fitted["temperature"])
    assert block["calibrated"]["nll"] == pytest.approx(calib.negative_log_likelihood(calibrated, split.labels),
                                                       abs=1e-5)
    assert block["calibrated"]["ece"] < block["raw"]["ece"]
    assert out["accuracy"] == block["calibrated"]["accuracy"] == block["raw"]["accuracy"]
    assert block["selective"]["threshold"] == fitted["uncertain_threshold"]

    assert main(["evaluate", "--model", "ensemble", "--data", str(data), "--json"]) == 0
    ensemble = json.loads(capsys.readouterr().out)["calibration"]
    assert set(ensemble["temperature"]) == {"x1", "x5", "ensemble"}  # each member's, and its own

    from fer.data import load_dataset

    assert main(["evaluate", "--model", "x5", "--data", str(data), "--split", "validation", "--json"]) == 0
    validation = json.loads(capsys.readouterr().out)
    val = load_dataset(data, val_fraction=0.1, seed=0).val
    assert validation["n"] == len(val.labels) != out["n"]
    raw_val = predict_scores(load_model("x5", zoo, calibrated=False), val.images)
    assert validation["accuracy"] == pytest.approx((raw_val.argmax(1) == val.labels).mean())


def test_a_tampered_temperature_or_threshold_is_refused_like_tampered_weights(bar_zoo, monkeypatch, capsys,
                                                                              tmp_path):
    import shutil

    from fer.zoo import load_model, read_calibration

    zoo, data = bar_zoo
    _calibrate("all", zoo, data, monkeypatch, capsys)
    copy = tmp_path / "zoo"
    shutil.copytree(zoo, copy)
    metrics_path = copy / "x5" / "metrics.json"
    original = metrics_path.read_text()
    for field, value in (("temperature", 1.0), ("uncertain_threshold", 0.0)):
        metrics = json.loads(original)
        metrics["calibration"][field] = value
        metrics_path.write_text(json.dumps(metrics))
        with pytest.raises(ZooError, match="calibration of x5 .* does not match its recorded sha256"):
            load_model("x5", copy)
        with pytest.raises(ZooError, match="calibration of x5"):
            read_calibration("x5", copy)
    # A calibration copied onto other weights is refused too: the digest is bound to the weights.
    metrics = json.loads((copy / "x1" / "metrics.json").read_text())
    metrics["calibration"] = json.loads(original)["calibration"]
    (copy / "x1" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ZooError, match="calibration of x1"):
        load_model("x1", copy)
    # Refitting restores a loadable entry.
    _calibrate("x5", copy, data, monkeypatch, capsys)
    load_model("x5", copy)
    # An edited ensemble threshold is refused as well.
    shutil.copy(zoo / "manifest.json", copy / "manifest.json")
    shutil.copy(zoo / "x1" / "metrics.json", copy / "x1" / "metrics.json")
    shutil.copy(zoo / "x5" / "metrics.json", copy / "x5" / "metrics.json")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["ensemble"]["uncertain_threshold"] = 0.0
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ZooError, match="calibration of ensemble"):
        read_calibration("ensemble", copy)


def test_an_entry_without_a_temperature_loads_with_t_1_and_says_so(app_zoo, caplog):
    from fer.zoo import load_model, read_calibration

    assert read_calibration("beta", app_zoo) is None
    faces = np.random.default_rng(0).integers(0, 256, (2, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")
    with caplog.at_level("WARNING", logger="fer.zoo"):
        model = load_model("beta", app_zoo)
    assert "beta has no fitted temperature" in caplog.text and "T = 1" in caplog.text
    np.testing.assert_array_equal(model.predict(faces, verbose=0),
                                  load_model("beta", app_zoo, calibrated=False).predict(faces, verbose=0))


# --- one temperature, applied identically everywhere ---------------------------------------------------------


def test_the_temperature_is_applied_identically_by_library_cli_and_api(app_zoo, app_server, fer_command):
    from gradio_client import Client, handle_file

    from fer.faces import crop_face, detect_faces, load_image, reading_order
    from fer.inference import Recognizer
    from fer.zoo import load_model

    library = Recognizer.from_zoo(app_zoo).predict(EXAMPLE, models="all")
    assert len(library.faces) == 2
    # What the library serves is the raw score at the entry's temperature, far enough from raw to tell.
    rgb, _ = load_image(EXAMPLE)
    crops = np.stack([crop_face(rgb, d.box, d.eyes) for d in reading_order(detect_faces(rgb))])[..., None].astype("float32")
    raw = load_model("alpha", app_zoo, calibrated=False).predict(crops, verbose=0)
    served = np.array([[f.scores["alpha"][e] for e in EMOTIONS] for f in library.faces])
    np.testing.assert_allclose(served, apply_temperature(raw, APP_ZOO_TEMPERATURE), atol=1e-5)
    assert np.abs(served - raw).max() > 1e-3
    beta = np.array([[f.scores["beta"][e] for e in EMOTIONS] for f in library.faces])
    np.testing.assert_allclose(np.array([[f.scores["ensemble"][e] for e in EMOTIONS] for f in library.faces]),
                               (served + beta) / 2, atol=1e-6, err_msg="the ensemble averages calibrated members")

    status, printed = fer_command("predict", str(EXAMPLE), "--model", "all", "--json")
    assert status == 0, printed.err[-2000:]
    cli_faces = json.loads(printed.out)[0]["faces"]
    api_faces = Client(app_server, verbose=False).predict(handle_file(str(EXAMPLE)), "alpha", api_name="/predict")
    for want, from_cli, from_api in zip(library.faces, cli_faces, api_faces, strict=True):
        for emotion in EMOTIONS:
            for model in ("alpha", "beta", "ensemble"):
                assert from_cli["scores"][model][emotion] == pytest.approx(want.scores[model][emotion], abs=1e-5)
            assert from_api["scores"][emotion] == pytest.approx(want.scores["alpha"][emotion], abs=1e-5)
        # Uncertain below the threshold, the same everywhere; beta has no threshold.
        below = {m: max(want.scores[m].values()) < APP_ZOO_THRESHOLD for m in ("alpha", "ensemble")}
        assert want.uncertain == from_cli["uncertain"] == {**below, "beta": None}
        assert from_api["uncertain"] is below["alpha"]
    assert all(f.uncertain["ensemble"] for f in library.faces), "the browser test expects an uncertain ensemble"


# --- what the app shows --------------------------------------------------------------------------------------


def _face(scores: dict[str, dict[str, float]], uncertain: dict[str, bool | None]):
    from fer.inference import Face

    full = {m: {e: s.get(e, 0.0) for e in EMOTIONS} for m, s in scores.items()}
    return Face(None, full, uncertain=uncertain)


def test_the_verdict_and_the_disagreement_line():
    from fer.render import agreement, face_label, verdict

    face = _face({"custom_cnn": {"sad": 0.46, "neutral": 0.3}, "vgg16": {"neutral": 0.51, "sad": 0.2},
                  "ensemble": {"neutral": 0.405, "sad": 0.33}},
                 {"custom_cnn": True, "vgg16": False, "ensemble": True})
    assert agreement(face, ["custom_cnn", "vgg16"]) == \
        "The models disagree: custom_cnn: sad 0.46 (uncertain), vgg16: neutral 0.51."
    agreeing = _face({"a": {"happy": 0.9}, "b": {"happy": 0.7}}, {"a": False, "b": None})
    assert agreement(agreeing, ["a", "b"]) == "The models agree: a: happy 0.90, b: happy 0.70."
    assert agreement(agreeing, ["a"]) == "One model, nothing to compare: a: happy 0.90."

    assert face_label(face, "custom_cnn") == "uncertain (sad 46%)"
    assert face_label(face, "vgg16") == "neutral 51%"
    measured = calib.SplitCalibration("val", 100, None, None, calib.Selective(0.55, 0.7, 0.8))
    c = Calibration(0.9, 0.55, 0.8, validation=measured)
    assert verdict(face, "custom_cnn", c, 2) == (
        "Face 2: **uncertain**: custom_cnn's top score, sad 0.46, is below 0.55; on validation faces that score "
        "0.55 or more (70% of them) custom_cnn is 80% accurate.")
    assert verdict(face, "vgg16", c).startswith("Face 1: **neutral** 0.51, at or above vgg16's threshold of 0.55")
    assert "no validated threshold" in verdict(face, "vgg16", None)


def test_the_recognizer_marks_faces_below_the_threshold_uncertain():
    import keras

    from fer.inference import Recognizer
    from fer.models import build_model

    keras.utils.set_random_seed(0)
    network = build_model("custom_cnn")
    recognizer = Recognizer({"a": network, "b": network, "c": network},
                            {"a": Calibration(1.0, 0.99), "b": Calibration(1.0, 0.0), "ensemble": None})
    face = recognizer.predict(EXAMPLE, models="all").faces[0]
    assert face.uncertain == {"a": True, "b": False, "c": None, "ensemble": None}
    assert recognizer.uncertain_threshold("a") == 0.99 and recognizer.uncertain_threshold("c") is None
    assert face.to_dict()["uncertain"] == face.uncertain


def test_the_app_zoo_is_calibrated_as_the_tests_expect(app_zoo):
    from fer.zoo import read_calibration

    assert read_calibration("alpha", app_zoo).temperature == APP_ZOO_TEMPERATURE
    assert read_calibration("ensemble", app_zoo).uncertain_threshold == APP_ZOO_THRESHOLD


def test_ensemble_members_are_chosen_by_validation_accuracy():
    from fer.export import choose_members

    labels = np.array([0, 1, 2, 3])
    right = np.eye(7)[labels] * 0.5 + 0.5 / 7
    weakly_right = np.eye(7)[labels] * 0.3 + 0.7 / 7
    wrong = np.eye(7)[(labels + 1) % 7] * 0.99 + 0.01 / 7
    members, rows = choose_members({"good": right, "bad": wrong, "fair": weakly_right}, labels)
    assert members == ["good", "fair"], "a weak model is left out when it costs validation accuracy"
    assert len(rows) == 4 and rows[0]["members"] == members and rows[0]["validation_accuracy"] == 1.0
    assert [r["validation_accuracy"] for r in rows] == sorted((r["validation_accuracy"] for r in rows), reverse=True)
    members, _ = choose_members({"a": right, "b": right, "c": right}, labels)
    assert members == ["a", "b", "c"], "among equals, more members"
