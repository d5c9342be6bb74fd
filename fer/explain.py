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


def _target_layer(model) -> str:
    """The last top-level layer with a spatial feature map of at least 6x6."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None) is not None and layer.output.shape
        if shape and len(shape) == 4 and shape[1] >= 6 and not layer.name.startswith("face"):
            return layer.name
    raise UnknownModelError(f"{model.name} has no top-level convolutional feature map for Grad-CAM.")


def grad_cam(model, face: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """A heat map (48x48, values 0-1) of where ``model`` looked on a 48x48 uint8 ``face``, and the class
    explained (the top-scoring one unless ``class_index`` is given)."""
    import keras
    import tensorflow as tf

    net = _classifier(model)
    layer = _target_layer(net)
    grad_model = keras.Model(net.inputs, [net.get_layer(layer).output, net.output])
    x = tf.constant(face.astype(np.float32)[None, ..., None])
    with tf.GradientTape() as tape:
        features, scores = grad_model(x, training=False)
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
