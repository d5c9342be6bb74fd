"""The inference pipeline and what the demo renders, on a zoo the tests build."""

import numpy as np
import pytest

from conftest import PHOTOS, needs_photos, synthetic_faces
from fer.errors import UnknownModelError
from fer.inference import ENSEMBLE, Recognizer
from fer.labels import EMOTIONS
from fer.models import build_model, with_flip_tta
from fer.render import annotate, compare_figure, leaderboard_rows


@pytest.fixture(scope="module")
def recognizer():
    import keras

    keras.utils.set_random_seed(0)
    return Recognizer({"a": with_flip_tta(build_model("custom_cnn")), "b": build_model("custom_cnn")})


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
    fig = compare_figure(result.faces[0], {"a": 0.7})
    assert len(fig.axes[0].patches) == 3 * 7
    as_json = result.to_dict()
    assert len(as_json["faces"][0]["box"]) == 4


def test_leaderboard_rows_from_metrics():
    from types import SimpleNamespace

    per_class = {e: {"f1": 0.5} for e in EMOTIONS}
    entries = [SimpleNamespace(name=n, architecture=n, metrics={
        "test": {"accuracy": acc, "macro_f1": 0.5, "per_class": per_class}, "parameters": 10,
        "size_bytes": 2e6}) for n, acc in [("x", 0.6), ("y", 0.7)]]
    headers, rows = leaderboard_rows(entries)
    assert [r[0] for r in rows] == ["y", "x"]
    assert len(headers) == len(rows[0])


def test_grad_cam_highlights_the_informative_region():
    """A model trained on the synthetic bar task should look at the bar, not the background."""
    from fer.augment import AugmentConfig
    from fer.data import Dataset, Split
    from fer.explain import grad_cam, overlay
    from fer.training import TrainConfig, fit

    x, y = synthetic_faces(30, seed=0)
    data = Dataset("s", "folders", Split("train", x, y), Split("val", x[::5], y[::5]), Split("test", x[:7], y[:7]))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        still = AugmentConfig(flip=True, rotation=0, shift=0, zoom=0, brightness=0, contrast=0)
        model = fit(TrainConfig(output=tmp, epochs=4, batch_size=8, learning_rate=2e-3, warmup_epochs=0,
                                augment=still), data)
    face = x[y == 3][0]  # bar in rows ~21-25
    cam, cls = grad_cam(with_flip_tta(model), face, class_index=3)
    assert cam.shape == (48, 48) and 0 <= cam.min() and cam.max() <= 1
    assert cls == 3
    band = cam[18:30].mean()
    assert band > cam[:12].mean() and band > cam[-12:].mean()
    assert overlay(face, cam).shape == (192, 192, 3)


@pytest.mark.parametrize("name", ["custom_cnn", "vgg16", "resnet50v2"])
def test_grad_cam_works_for_every_architecture(name):
    from fer.explain import grad_cam

    face = np.random.default_rng(0).integers(0, 256, (48, 48)).astype(np.uint8)
    cam, cls = grad_cam(with_flip_tta(build_model(name)), face)
    assert cam.shape == (48, 48) and 0 <= cls < 7
