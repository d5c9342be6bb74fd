"""The names a command line offers before Keras loads: architectures and test-time augmentations.

fer.models builds exactly these architectures (tests/test_models.py holds the two together); naming them here
lets train.py list its choices and refuse a bad command in a second, without TensorFlow's start-up.
"""

from __future__ import annotations

ARCHITECTURE_NAMES: tuple[str, ...] = ("custom_cnn", "vgg16", "vgg16_bn", "resnet50v2")

TTA_MODES: tuple[str, ...] = ("none", "flip", "flip_shift")
"""Test-time augmentation: one view; the face and its mirror image; those two each also shifted by
fer.models.SHIFT_PIXELS up, down, left and right (10 views)."""
