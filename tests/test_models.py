import keras
import numpy as np
import pytest

from fer.errors import UnknownModelError
from fer.labels import NUM_CLASSES
from fer.models import ARCHITECTURES, build_model, with_tta


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_each_architecture_builds_and_takes_a_training_step(name):
    model = build_model(name)
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, NUM_CLASSES)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", jit_compile=False)
    x = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype("uint8")
    y = keras.utils.to_categorical([0, 1, 2, 3], NUM_CLASSES)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    scores = model.predict(x, verbose=0)
    np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)


def test_the_architectures_built_are_the_ones_named_without_keras():
    from fer.names import ARCHITECTURE_NAMES

    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES


def test_unknown_architecture_names_the_choices():
    with pytest.raises(UnknownModelError, match="custom_cnn"):
        build_model("alexnet")


def test_flip_tta_is_the_mean_over_the_mirror_image():
    model = build_model("custom_cnn")
    tta = with_tta(model, "flip")
    x = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    expected = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(tta.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_shift_tta_averages_ten_views_and_round_trips_through_a_file(tmp_path):
    from fer.models import Shift, with_tta

    model = build_model("custom_cnn")
    x = np.random.default_rng(2).integers(0, 256, (2, 48, 48, 1)).astype("float32")
    shifted = np.asarray(Shift(2, 0)(x))
    np.testing.assert_array_equal(shifted[:, 2:], x[:, :-2])  # moved down by two rows
    np.testing.assert_array_equal(shifted[:, :2], x[:, 2:0:-1])  # border filled by reflection

    def shift(a, dy, dx):
        return np.asarray(Shift(dy, dx)(a))

    views = []
    for v in (x, x[:, :, ::-1]):
        views += [v] + [shift(v, dy, dx) for dy, dx in [(2, 0), (-2, 0), (0, 2), (0, -2)]]
    expected = np.mean([model.predict(v, verbose=0) for v in views], axis=0)
    tta = with_tta(model, "flip_shift")
    np.testing.assert_allclose(tta.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    tta.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    assert with_tta(model, "none") is model


@pytest.mark.parametrize("name", ["custom_cnn", "resnet50v2"])
def test_traced_inference_freezes_the_weights_and_scores_like_the_keras_model(name):
    from fer.models import traced_inference

    rng = np.random.default_rng(3)
    model = build_model(name)
    for layer in model.layers:  # statistics a trained network has, so that folding them has something to fold
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, variance = layer.moving_mean, layer.moving_variance
            mean.assign(rng.normal(0, 0.5, mean.shape).astype("float32"))
            variance.assign(rng.uniform(0.5, 2.0, variance.shape).astype("float32"))
    tta = with_tta(model, "flip_shift")
    infer = traced_inference(tta)
    for n in (1, 4):
        x = rng.integers(0, 256, (n, 48, 48, 1)).astype("float32")
        np.testing.assert_allclose(np.asarray(infer(x)), np.asarray(tta(x, training=False)), rtol=1e-4, atol=1e-6)
    model.layers[-1].kernel.assign(np.zeros(model.layers[-1].kernel.shape, "float32"))
    assert not np.allclose(np.asarray(tta(x, training=False)), np.asarray(infer(x)))  # a snapshot, not live weights
    live = traced_inference(tta, freeze=False)  # what a one-shot command uses: no freezing cost
    np.testing.assert_allclose(np.asarray(live(x)), np.asarray(tta(x, training=False)), rtol=1e-4, atol=1e-6)
