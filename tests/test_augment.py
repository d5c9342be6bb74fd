import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from fer.augment import AugmentConfig, build_augmenter, class_weights, oversample_indices
from fer.errors import ConfigError


def test_balanced_weights_match_scikit_learn():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20 + [3] * 100 + [4] * 30 + [5] * 10 + [6] * 40)
    expected = compute_class_weight("balanced", classes=np.arange(7), y=labels)
    got = class_weights(labels, "balanced")
    np.testing.assert_allclose([got[i] for i in range(7)], expected)
    np.testing.assert_allclose([class_weights(labels, "sqrt")[i] for i in range(7)], np.sqrt(expected))
    assert class_weights(labels, "none") == {i: 1.0 for i in range(7)}


def test_weights_given_per_class():
    w = class_weights(np.arange(7), '{"disgust": 4, "happy": 0.5}')
    assert w[1] == 4 and w[3] == 0.5 and w[0] == 1
    with pytest.raises(ConfigError, match="Unknown emotions"):
        class_weights(np.arange(7), '{"bored": 2}')
    with pytest.raises(ConfigError, match="balanced"):
        class_weights(np.arange(7), "heavy")


def test_oversampling_lifts_rare_classes():
    labels = np.array([0] * 100 + [1] * 5 + [2] * 60)
    idx = oversample_indices(labels, 0.5, seed=0)
    counts = np.bincount(labels[idx], minlength=7)
    assert counts[0] == 100 and counts[1] == 50 and counts[2] == 60
    assert set(idx[:len(labels)]) == set(range(len(labels)))


def test_augmenter_changes_images_but_keeps_shape_and_range():
    x = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype("float32")
    out = np.asarray(build_augmenter(AugmentConfig())(x, training=True))
    assert out.shape == x.shape
    assert not np.allclose(out, x)
    off = AugmentConfig(flip=False, rotation=0, shift=0, zoom=0, brightness=0, contrast=0)
    assert build_augmenter(off) is None
