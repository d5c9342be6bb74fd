"""Batched augmentation on the accelerator, in JAX, for the device trainer (fer.device).

The same augmentation as fer.augment's Keras layers, but as a pure function of a ``jax.random`` key
and a batch, traced into the compiled training step: no host work per sample. Keras preprocessing
layers run slowly on the JAX backend; this does one bilinear resampling per batch instead of one per
layer. Semantics follow ``fer.augment.build_augmenter`` on faces of 0-255 pixels:

* flip: left-right with probability 1/2;
* rotation, shift, zoom: one affine map per face (rotation of up to ``rotation`` degrees about the
  centre, zoom by a factor 1 +- ``zoom`` (above 1 zooms out), a shift of up to ``shift`` of the side),
  resampled bilinearly with the border reflected (Keras's ``fill_mode="reflect"``);
* brightness: plus up to +- ``brightness`` x 255; contrast: the distance from the face's mean scaled by
  1 +- ``contrast``; each clipped to 0-255;
* random erasing (device option): with probability ``erasing`` a rectangle of 2-33 % of the face,
  aspect 0.3-3.3, is set to 0 (torchvision's ``RandomErasing`` defaults);
* mixup (device option): ``mix_batch`` blends each face and its one-hot label with another face of the
  batch, the weight drawn from Beta(alpha, alpha).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from fer.augment import AugmentConfig

ERASE_AREA = (0.02, 0.33)  # fraction of the face
ERASE_ASPECT = (0.3, 3.3)  # height / width


def augment_batch(key: jax.Array, images: jax.Array, config: AugmentConfig, erasing: float = 0.0) -> jax.Array:
    """Augment a batch of faces (N, H, W) of 0-255 pixels (uint8 or float); returns float32 (N, H, W) in 0-255.

    Deterministic for a given key; each switched-off part (0 or False in ``config``) is left out of the
    computation entirely.
    """
    flip_key, affine_key, brightness_key, contrast_key, erase_key = jax.random.split(key, 5)
    x = images.astype(jnp.float32)
    if config.flip:
        x = random_flip(flip_key, x)
    if config.rotation or config.shift or config.zoom:
        x = random_affine(affine_key, x, config.rotation, config.shift, config.zoom)
    if config.brightness:
        x = random_brightness(brightness_key, x, config.brightness)
    if config.contrast:
        x = random_contrast(contrast_key, x, config.contrast)
    if erasing:
        x = random_erasing(erase_key, x, erasing)
    return x


def random_flip(key: jax.Array, x: jax.Array) -> jax.Array:
    """Mirror each face left-right with probability 1/2."""
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1))
    return jnp.where(flip, x[:, :, ::-1], x)


def random_affine(key: jax.Array, x: jax.Array, rotation: float, shift: float, zoom: float) -> jax.Array:
    """Rotate (up to +-``rotation`` degrees), zoom (factor 1 +- ``zoom``) and shift (up to +-``shift`` x side)
    each face about its centre, bilinearly, reflecting the border."""
    n, h, w = x.shape
    angle_key, zoom_key, shift_key = jax.random.split(key, 3)
    angle = jax.random.uniform(angle_key, (n,), minval=-1, maxval=1) * math.radians(rotation)
    scale = 1 + jax.random.uniform(zoom_key, (n,), minval=-zoom, maxval=zoom)
    offset = jax.random.uniform(shift_key, (n, 2), minval=-shift, maxval=shift) * jnp.array([h, w])
    # For each output pixel, the input point it samples (rows, columns relative to the centre).
    rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing="ij")
    cos, sin = (jnp.cos(angle) * scale)[:, None, None], (jnp.sin(angle) * scale)[:, None, None]
    src_rows = cos * rows - sin * cols - offset[:, 0, None, None] + (h - 1) / 2
    src_cols = sin * rows + cos * cols - offset[:, 1, None, None] + (w - 1) / 2

    def resample(face, r, c):
        return jax.scipy.ndimage.map_coordinates(face, [r, c], order=1, mode="reflect")

    return jax.vmap(resample)(x, src_rows, src_cols)


def random_brightness(key: jax.Array, x: jax.Array, brightness: float) -> jax.Array:
    """Add up to +-``brightness`` x 255 to each face; clip to 0-255."""
    delta = jax.random.uniform(key, (x.shape[0], 1, 1), minval=-brightness, maxval=brightness) * 255
    return jnp.clip(x + delta, 0, 255)


def random_contrast(key: jax.Array, x: jax.Array, contrast: float) -> jax.Array:
    """Scale each face's distance from its mean by a factor in 1 +- ``contrast``; clip to 0-255."""
    factor = jax.random.uniform(key, (x.shape[0], 1, 1), minval=1 - contrast, maxval=1 + contrast)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return jnp.clip((x - mean) * factor + mean, 0, 255)


def random_erasing(key: jax.Array, x: jax.Array, probability: float) -> jax.Array:
    """With ``probability``, set a random rectangle of each face (ERASE_AREA, ERASE_ASPECT) to 0."""
    n, h, w = x.shape
    apply_key, area_key, aspect_key, top_key, left_key = jax.random.split(key, 5)
    area = jax.random.uniform(area_key, (n,), minval=ERASE_AREA[0], maxval=ERASE_AREA[1]) * h * w
    aspect = jnp.exp(jax.random.uniform(aspect_key, (n,), minval=math.log(ERASE_ASPECT[0]),
                                        maxval=math.log(ERASE_ASPECT[1])))
    eh = jnp.clip(jnp.round(jnp.sqrt(area * aspect)), 1, h)
    ew = jnp.clip(jnp.round(jnp.sqrt(area / aspect)), 1, w)
    top = jnp.floor(jax.random.uniform(top_key, (n,)) * (h - eh + 1))
    left = jnp.floor(jax.random.uniform(left_key, (n,)) * (w - ew + 1))
    rows, cols = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
    erase = jax.random.bernoulli(apply_key, probability, (n, 1, 1))
    return jnp.where(inside & erase, 0.0, x)


def mix_batch(key: jax.Array, x: jax.Array, targets: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
    """Mixup: each face and its target (N, C) blended with those of a random other face of the batch,
    weight ~ Beta(alpha, alpha) per face."""
    weight_key, partner_key = jax.random.split(key)
    lam = jax.random.beta(weight_key, alpha, alpha, (x.shape[0],))
    partner = jax.random.permutation(partner_key, x.shape[0])
    mixed_x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[partner]
    return mixed_x, lam[:, None] * targets + (1 - lam[:, None]) * targets[partner]
