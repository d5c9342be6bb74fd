"""Grad-CAM: which part of a face drove a model's score (Selvaraju et al., 2017)."""

from __future__ import annotations

import cv2
import numpy as np

from fer.errors import UnknownModelError
from fer.labels import IMAGE_SIZE


def _classifier(model):
    """The network inside a flip-TTA wrapper (or the model itself)."""
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[0] if len(inner) == 1 and model.name.endswith("_tta") else model


def _is_feature_map(layer, min_side: int) -> bool:
    from keras import layers

    shape = layer.output.shape
    return len(shape) == 4 and shape[1] is not None and shape[1] >= min_side \
        and not isinstance(layer, (layers.InputLayer, layers.MaxPooling2D, layers.Concatenate, layers.ZeroPadding2D))


def _target_layer(model, min_side: int = 6):
    """The last feature map of at least ``min_side`` pixels: (owner model, layer name)."""
    import keras

    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):  # a keras.applications backbone: look inside it
            for inner in reversed(layer.layers):
                if _is_feature_map(inner, 3):
                    return layer, inner.name
        elif _is_feature_map(layer, min_side):
            return model, layer.name
    raise UnknownModelError(f"{model.name} has no convolutional feature map for Grad-CAM.")


def _features_and_scores(net):
    """A function face -> (feature map, scores) through ``net``, reaching inside a nested backbone."""
    import keras

    owner, name = _target_layer(net)
    if owner is net:
        return keras.Model(net.inputs, [net.get_layer(name).output, net.output])
    # The classifier is a chain around the backbone (see fer.models._applications_model): run it layer
    # by layer, asking the backbone for the feature map as a second output.
    tapped = keras.Model(owner.inputs, [owner.get_layer(name).output, owner.output])

    def run(x, training=False):
        h, features = x, None
        for layer in net.layers[1:]:
            if layer is owner:
                features, h = tapped(h, training=training)
            elif isinstance(layer, keras.layers.Concatenate):
                h = layer([h] * len(layer.input))
            else:
                h = layer(h, training=training)
        return features, h

    return run


def grad_cam(model, face: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """A heat map (48x48, values 0-1) of where ``model`` looked on a 48x48 uint8 ``face``, and the class
    explained (the top-scoring one unless ``class_index`` is given)."""
    import tensorflow as tf

    features_and_scores = _features_and_scores(_classifier(model))
    x = tf.constant(face.astype(np.float32)[None, ..., None])
    with tf.GradientTape() as tape:
        features, scores = features_and_scores(x, training=False)
        if class_index is None:
            class_index = int(tf.argmax(scores[0]))
        target = scores[:, class_index]
    grads = tape.gradient(target, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[0].numpy()
    cam = cv2.resize(cam, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_CUBIC)
    cam = np.clip(cam, 0, None)
    return (cam / cam.max() if cam.max() > 0 else cam), class_index


def overlay(face: np.ndarray, cam: np.ndarray, size: int = 192) -> np.ndarray:
    """The heat map blended over the face, as an RGB image of ``size`` pixels."""
    gray = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    heat = cv2.applyColorMap((cv2.resize(cam, (size, size)) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), 0.55, heat, 0.45, 0)
    return cv2.cvtColor(blended, cv2.COLOR_BGR2RGB)
