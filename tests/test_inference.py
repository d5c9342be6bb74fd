"""The inference pipeline and what the demo renders, on a zoo the tests build."""

import numpy as np
import pytest

from conftest import PHOTOS, needs_photos, synthetic_faces
from fer.ensemble import ENSEMBLE
from fer.errors import UnknownModelError
from fer.inference import Recognizer
from fer.labels import EMOTIONS
from fer.models import ARCHITECTURES, build_model, with_tta
from fer.render import annotate, compare_figure, leaderboard_rows


@pytest.fixture(scope="module")
def recognizer():
    import keras

    keras.utils.set_random_seed(0)
    return Recognizer({"a": with_tta(build_model("custom_cnn"), "flip"), "b": build_model("custom_cnn")})


def test_scores_match_the_model_and_ensemble_is_the_mean(recognizer):
    x, _ = synthetic_faces(1)
    scores = recognizer.score_crops(x, "all")
    assert set(scores) == {"a", "b", ENSEMBLE}
    np.testing.assert_allclose(scores["b"], recognizer.models["b"].predict(x[..., None], verbose=0), atol=1e-5)
    np.testing.assert_allclose(scores[ENSEMBLE], (scores["a"] + scores["b"]) / 2, atol=1e-6)
    with pytest.raises(UnknownModelError, match="a, b, ensemble"):
        recognizer.score_crops(x, "nope")


def test_whole_image_fallback_when_no_face(recognizer):
    blank = np.full((200, 200, 3), 128, np.uint8)
    assert recognizer.predict(blank).faces == []
    result = recognizer.predict(blank, whole_image_if_no_face=True)
    assert result.whole_image and len(result.faces) == 1 and result.faces[0].box is None
    assert set(result.faces[0].scores["a"]) == set(EMOTIONS)


@needs_photos
def test_photo_to_faces_scores_and_rendering(recognizer):
    result = recognizer.predict(PHOTOS / "couple.jpg", models="all")
    assert len(result.faces) == 2
    for face in result.faces:
        assert face.crop.shape == (48, 48)
        for model in ("a", "b", ENSEMBLE):
            assert sum(face.scores[model].values()) == pytest.approx(1, abs=1e-4)
    annotated = annotate(result, "a")
    assert annotated.shape == result.image.shape and not np.array_equal(annotated, result.image)
    fig = compare_figure(result.faces[0], {"a": 0.7}, members=["a", "b"])
    assert len(fig.axes[0].patches) == 3 * 7
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "a (test acc 70.0%)", "b", "ensemble (mean of a + b)"]
    as_json = result.to_dict()
    assert len(as_json["faces"][0]["box"]) == 4
    assert as_json["detector"] == "mtcnn" and all(f["confidence"] > 0.9 for f in as_json["faces"])


@needs_photos
def test_the_detector_is_a_choice_and_levelling_can_be_turned_off(recognizer):
    from fer.errors import DetectorError
    from fer.render import detection_note

    haar = recognizer.predict(PHOTOS / "couple.jpg", models=["a"], detector="haar")
    assert haar.detector == "haar" and len(haar.faces) == 2
    assert all(f.confidence is None and f.levelled_by is None for f in haar.faces)
    assert "Detector: haar" in detection_note(haar) and "gives none" in detection_note(haar)
    levelled = recognizer.predict(PHOTOS / "couple.jpg", models=["a"])
    plain = recognizer.predict(PHOTOS / "couple.jpg", models=["a"], level=False)
    tilted = max(range(2), key=lambda i: abs(levelled.faces[i].levelled_by))
    assert abs(levelled.faces[tilted].levelled_by) > 3  # one of the couple leans: her crop is turned upright
    assert not np.array_equal(levelled.faces[tilted].crop, plain.faces[tilted].crop)
    assert "Detector: mtcnn" in detection_note(levelled) and "levelled by" in detection_note(levelled)
    with pytest.raises(DetectorError, match="mtcnn, haar"):
        recognizer.predict(PHOTOS / "couple.jpg", detector="dlib")


def test_side_by_side_keeps_every_image():
    from fer.render import side_by_side

    a, b = np.zeros((50, 40, 3), np.uint8), np.full((50, 30, 3), 200, np.uint8)
    row = side_by_side([a, b], ["a", "b"], gap=5)
    assert row.shape == (78, 75, 3)
    assert (row[:50, :40] == 0).all() and (row[:50, 45:] == 200).all()


def test_leaderboard_rows_from_metrics():
    from types import SimpleNamespace

    per_class = {e: {"f1": 0.5} for e in EMOTIONS}
    entries = [SimpleNamespace(name=n, architecture=n, metrics={
        "test": {"accuracy": acc, "macro_f1": 0.5, "per_class": per_class}, "parameters": 10,
        "size_bytes": 2e6}) for n, acc in [("x", 0.6), ("y", 0.7)]]
    headers, rows = leaderboard_rows(entries)
    assert [r[0] for r in rows] == ["y", "x"]
    assert len(headers) == len(rows[0])


def test_grad_cam_highlights_the_evidence_for_the_class():
    """A hand-built model whose class-0 score grows with the brightness of any region: Grad-CAM for
    class 0 must light up the bright square and nothing else."""
    import keras

    from fer.explain import grad_cam, overlay

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    features = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="features")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    scores = keras.layers.Dense(7, activation="softmax")(pooled)
    model = keras.Model(inputs, scores)
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[..., 0, 0] = 1 / 9  # channel 0: local brightness; channel 1: silent
    model.get_layer("features").set_weights([kernel, np.zeros(2, np.float32)])
    dense = np.zeros((2, 7), np.float32)
    dense[0, 0] = 20.0
    model.layers[-1].set_weights([dense, np.zeros(7, np.float32)])

    face = np.zeros((48, 48), np.uint8)
    face[4:16, 4:16] = 255
    cam, cls = grad_cam(model, "features", face)
    assert cls == 0
    assert cam.shape == (48, 48) and cam.max() == pytest.approx(1.0)
    assert cam[4:16, 4:16].mean() > 0.5
    assert cam[28:, 28:].max() < 0.05
    assert overlay(face, cam).shape == (192, 192, 3)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_grad_cam_works_for_every_architecture_at_its_own_layer(name):
    from fer.explain import grad_cam

    face = np.random.default_rng(0).integers(0, 256, (48, 48)).astype(np.uint8)
    network = build_model(name)
    cam, cls = grad_cam(network, ARCHITECTURES[name].gradcam_layer, face)
    assert cam.shape == (48, 48) and 0 <= cls < 7
    assert len(network.get_layer(ARCHITECTURES[name].gradcam_layer).output.shape) == 4, "a feature map"


def test_the_ensemble_exists_only_with_two_models_or_more(app_zoo, tmp_path):
    import shutil

    from fer.zoo import load_model

    one = Recognizer({"a": build_model("custom_cnn")})
    assert one.model_names == ["a"] and not one.has_ensemble
    with pytest.raises(UnknownModelError, match="choose from a or all"):
        one.resolve("ensemble")
    assert set(one.score_crops(synthetic_faces(1)[0], "all")) == {"a"}

    single_zoo = tmp_path / "zoo"
    single_zoo.mkdir()
    shutil.copytree(app_zoo / "alpha", single_zoo / "alpha")
    with pytest.raises(UnknownModelError, match="at least 2 zoo entries and the zoo has 1"):
        load_model(ENSEMBLE, zoo_dir=single_zoo)
    two = load_model(ENSEMBLE, zoo_dir=app_zoo)
    x = synthetic_faces(1)[0][..., None].astype("float32")
    members = [load_model(n, zoo_dir=app_zoo).predict(x, verbose=0) for n in ("alpha", "beta")]
    np.testing.assert_allclose(two.predict(x, verbose=0), np.mean(members, axis=0), atol=1e-6)


def test_the_selected_face_is_highlighted(recognizer):
    from fer.faces import Box
    from fer.inference import Face, ImageResult

    image = np.full((200, 300, 3), 128, np.uint8)
    faces = [Face(Box(10, 50, 60, 60), {"a": dict.fromkeys(EMOTIONS, 1 / 7)}),
             Face(Box(200, 50, 60, 60), {"a": dict.fromkeys(EMOTIONS, 1 / 7)})]
    result = ImageResult(faces, image)
    plain, first, second = annotate(result, "a"), annotate(result, "a", selected=0), annotate(result, "a", selected=1)
    assert not np.array_equal(first, plain) and not np.array_equal(first, second)
    assert np.array_equal(first[:, 150:], plain[:, 150:]), "only the selected face's outline changes"


def test_the_ensemble_averages_only_the_members_chosen_on_validation(app_zoo, tmp_path):
    """A third entry joins the zoo without joining the ensemble until `zoo calibrate ensemble` chooses it: the
    sealed record (members chosen on validation) holds while its members are unchanged."""
    import shutil

    from fer.calibration import Calibration
    from fer.export import export_entry, record_ensemble_calibration
    from fer.metrics import compute_metrics
    from fer.training import TrainConfig
    from fer.zoo import ensemble_members, load_model, read_ensemble_calibration, summarize_zoo, write_manifest

    zoo = tmp_path / "zoo"
    shutil.copytree(app_zoo, zoo)
    (tmp_path / "history.csv").write_text("epoch,accuracy,loss\n0,0.5,1.0\n")
    result = compute_metrics(np.arange(7), np.arange(7))
    export_entry(build_model("custom_cnn"), TrainConfig(name="gamma", zoo_dir=str(zoo)), result, result, tmp_path,
                 train_seconds=1)
    assert ensemble_members(zoo) == ["alpha", "beta"], "a new entry does not change the sealed members"
    assert read_ensemble_calibration(zoo) is not None

    record_ensemble_calibration(zoo, Calibration(1.0, 0.4), members=["alpha", "gamma"],
                                selection=[{"members": ["alpha", "gamma"], "validation_accuracy": 0.5}])
    assert ensemble_members(zoo) == ["alpha", "gamma"]
    assert summarize_zoo(zoo)[-1].members == ["alpha", "gamma"]
    recognizer = Recognizer.from_zoo(zoo)
    assert recognizer.ensemble_members == ["alpha", "gamma"] and recognizer.uncertain_threshold(ENSEMBLE) == 0.4
    x = synthetic_faces(2)[0]
    scores = recognizer.score_crops(x, "all")
    np.testing.assert_allclose(scores[ENSEMBLE], (scores["alpha"] + scores["gamma"]) / 2, atol=1e-6)
    assert not np.allclose(scores[ENSEMBLE], (scores["alpha"] + scores["beta"] + scores["gamma"]) / 3, atol=1e-4)
    members = [load_model(n, zoo_dir=zoo).predict(x[..., None].astype("float32"), verbose=0) for n in ("alpha", "gamma")]
    np.testing.assert_allclose(load_model(ENSEMBLE, zoo_dir=zoo).predict(x[..., None].astype("float32"), verbose=0),
                               np.mean(members, axis=0), atol=1e-5)

    import json

    from fer.errors import ZooError

    manifest = json.loads((zoo / "manifest.json").read_text())
    edited = dict(manifest, ensemble={**manifest["ensemble"], "members": {
        n: e for n, e in manifest["ensemble"]["members"].items() if n == "alpha"} | {
        r["name"]: (r.get("calibration") or {}).get("sha256") or r["sha256"] for r in manifest["models"]
        if r["name"] == "beta"}})
    (zoo / "manifest.json").write_text(json.dumps(edited))
    with pytest.raises(ZooError, match="calibration of ensemble"):
        ensemble_members(zoo)  # members edited after sealing are refused, not averaged
    (zoo / "manifest.json").write_text(json.dumps(manifest))

    shutil.rmtree(zoo / "gamma")  # a member leaves: the record no longer holds, every entry is averaged
    assert ensemble_members(zoo) == ["alpha", "beta"] and read_ensemble_calibration(zoo) is None
    assert Recognizer.from_zoo(zoo).ensemble_members == ["alpha", "beta"]
    write_manifest(zoo)
    assert "ensemble" not in json.loads((zoo / "manifest.json").read_text())


def test_the_ensembles_own_temperature_is_applied_alike_in_app_api_and_evaluation(app_zoo, tmp_path):
    """The Recognizer (app, API, MCP, CLI), fer.zoo.load_model and fer evaluate's scores agree on the ensemble:
    the mean of its calibrated members, then its own temperature."""
    import shutil

    from fer.calibration import Calibration, apply_temperature
    from fer.evaluation import score_calibrated
    from fer.export import record_ensemble_calibration
    from fer.zoo import load_model

    zoo = tmp_path / "zoo"
    shutil.copytree(app_zoo, zoo)
    record_ensemble_calibration(zoo, Calibration(0.25, 0.4))
    x = synthetic_faces(3)[0]
    recognizer = Recognizer.from_zoo(zoo)
    scores = recognizer.score_crops(x, "all")
    mean = (scores["alpha"] + scores["beta"]) / 2
    expected = apply_temperature(mean, 0.25)
    assert recognizer.ensemble_temperature == 0.25 and np.abs(expected - mean).max() > 1e-3
    np.testing.assert_allclose(scores[ENSEMBLE], expected, atol=1e-5)
    np.testing.assert_allclose(load_model(ENSEMBLE, zoo_dir=zoo).predict(x[..., None].astype("float32"), verbose=0),
                               expected, atol=1e-5)
    evaluated = score_calibrated(ENSEMBLE, x, zoo)
    np.testing.assert_allclose(evaluated.calibrated, expected, atol=1e-5)
    assert evaluated.temperature[ENSEMBLE] == 0.25
    np.testing.assert_allclose(load_model(ENSEMBLE, zoo_dir=zoo, calibrated=False).predict(
        x[..., None].astype("float32"), verbose=0), evaluated.raw, atol=1e-5)
