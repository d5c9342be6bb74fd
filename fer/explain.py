"""Grad-CAM: which part of a face drove a model's score (Selvaraju et al., 2017).

The layer explained is the architecture's own fact (``fer.models.ARCHITECTURES[...].gradcam_layer``),
looked up by the caller; the network is the bare one a zoo entry stores (``fer.zoo.load_network``).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from fer.errors import UnknownModelError
from fer.labels import IMAGE_SIZE


def grad_cam(network, layer: str, face: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """A heat map (48x48, values 0-1) of where ``network`` looked on a 48x48 uint8 ``face``, from the
    feature map of ``layer``, and the class explained (the top-scoring one unless ``class_index`` is given)."""
    import keras
    import tensorflow as tf

    try:
        feature_map = network.get_layer(layer).output
    except ValueError:
        raise UnknownModelError(f"{network.name} has no layer {layer!r} to explain: is it the network of "
                                "the architecture its zoo entry names?") from None
    features_and_scores = keras.Model(network.inputs, [feature_map, network.output])
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


@functools.cache
def _zoo_network(name: str, zoo_dir: str | None):
    from fer.models import architecture
    from fer.zoo import architecture_of, load_network

    return load_network(name, zoo_dir), architecture(architecture_of(name, zoo_dir)).gradcam_layer


def explain_model(name: str, face: np.ndarray, zoo_dir: str | None = None) -> tuple[np.ndarray, int]:
    """Grad-CAM of zoo model ``name`` on ``face``, at its architecture's Grad-CAM layer (the network is
    loaded once)."""
    network, layer = _zoo_network(name, zoo_dir)
    return grad_cam(network, layer, face)


def overlay(face: np.ndarray, cam: np.ndarray, size: int = 192) -> np.ndarray:
    """The heat map blended over the face, as an RGB image of ``size`` pixels."""
    gray = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    heat = cv2.applyColorMap((cv2.resize(cam, (size, size)) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), 0.55, heat, 0.45, 0)
    return cv2.cvtColor(blended, cv2.COLOR_BGR2RGB)
