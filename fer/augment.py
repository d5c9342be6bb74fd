"""Class-imbalance handling: class weights, oversampling and on-the-fly augmentation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from fer.errors import ConfigError
from fer.labels import EMOTIONS, NUM_CLASSES
from fer.options import option

CLASS_WEIGHT_MODES = ("balanced", "sqrt", "none")


def class_weights(labels: np.ndarray, mode: str = "balanced") -> dict[int, float]:
    """Per-class loss weights.

    ``balanced`` is scikit-learn's ``n_samples / (n_classes * count)``; ``sqrt`` its square root (a
    milder correction); ``none`` all ones; a JSON object ``{"disgust": 4, ...}`` gives them per class
    (missing classes weigh 1). Classes absent from ``labels`` get weight 0 under balanced and sqrt.
    """
    if mode == "none":
        return {i: 1.0 for i in range(NUM_CLASSES)}
    if mode in ("balanced", "sqrt"):
        from sklearn.utils.class_weight import compute_class_weight

        present = np.unique(labels)
        weights = np.zeros(NUM_CLASSES)
        weights[present] = compute_class_weight("balanced", classes=present, y=labels)
        if mode == "sqrt":
            weights = np.sqrt(weights)
        return {i: float(w) for i, w in enumerate(weights)}
    try:
        given = json.loads(mode)
    except json.JSONDecodeError:
        given = None
    if not isinstance(given, dict):
        raise ConfigError(f"Class weights must be one of {', '.join(CLASS_WEIGHT_MODES)} or a JSON object "
                         f"such as '{{\"disgust\": 4.0}}', got {mode!r}")
    unknown = set(given) - set(EMOTIONS)
    if unknown:
        raise ConfigError(f"Unknown emotions in class weights: {', '.join(sorted(unknown))}; use {', '.join(EMOTIONS)}")
    return {i: float(given.get(e, 1.0)) for i, e in enumerate(EMOTIONS)}


def format_class_weights(weights: dict[int, float]) -> str:
    return ", ".join(f"{EMOTIONS[i]} {w:.2f}" for i, w in weights.items())


def oversample_indices(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices that repeat rare classes until each has at least ``fraction`` x the largest class."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    target = int(fraction * counts.max())
    parts = [np.arange(len(labels))]
    for c in range(NUM_CLASSES):
        members = np.flatnonzero(labels == c)
        if 0 < len(members) < target:
            parts.append(rng.choice(members, target - len(members), replace=True))
    return np.concatenate(parts)


@dataclass
class AugmentConfig:
    """On-the-fly augmentation; each part can be switched off from the command line (0 or --no-flip)."""

    flip: bool = option(True, "augmentation: random horizontal flips")
    rotation: float = option(10.0, "augmentation: max rotation, degrees (0: off)")
    shift: float = option(0.1, "augmentation: max shift, fraction of the side (0: off)")
    zoom: float = option(0.1, "augmentation: max zoom (0: off)")
    brightness: float = option(0.2, "augmentation: max brightness change, fraction of the 0-255 range (0: off)")
    contrast: float = option(0.2, "augmentation: max contrast factor (0: off)")

    @classmethod
    def off(cls) -> "AugmentConfig":
        return cls(flip=False, rotation=0, shift=0, zoom=0, brightness=0, contrast=0)

    def to_dict(self) -> dict:
        return asdict(self)


def build_augmenter(config: AugmentConfig):
    """A Keras Sequential applying ``config`` to float batches of (N, 48, 48, 1) pixels in 0-255, or
    None when every augmentation is switched off."""
    import keras

    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation / 360.0, fill_mode="reflect"))
    if config.shift:
        layers.append(keras.layers.RandomTranslation(config.shift, config.shift, fill_mode="reflect"))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect"))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255)))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255)))
    return keras.Sequential(layers, name="augment") if layers else None
