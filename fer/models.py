"""The architectures, built by name from one table, and the test-time augmentation and temperature
wrapped around them.

Every model takes 48x48x1 faces with raw 0-255 pixel values (uint8 or float) and carries its own
preprocessing as layers, so training, evaluation and the app cannot disagree about how a face
becomes a tensor. ``ARCHITECTURES`` holds each architecture's facts (builder, preprocessing, the
layer Grad-CAM explains, the pretrained weights it can start from); ``build_model(name)`` builds one.
Both flows import this module: training builds networks from it, the zoo reader needs its layers
registered to load saved models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from fer.calibration import EPSILON
from fer.errors import ConfigError, UnknownModelError
from fer.labels import IMAGE_SIZE, NUM_CLASSES
from fer.names import TTA_MODES

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


@keras.saving.register_keras_serializable(package="fer")
class HorizontalFlip(layers.Layer):
    """Mirror images left-right (deterministic; used for flip test-time augmentation)."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-2)


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _conv_stage(x, widths, names, pool_name: str):
    """Conv + BN + ReLU for each width, then a 2x2 max-pool."""
    for width, name in zip(widths, names):
        x = _conv_bn_relu(x, width, name)
    return layers.MaxPooling2D(2, name=pool_name)(x)


def _softmax_head(inputs, features, dropout: float, name: str) -> keras.Model:
    """Dropout and a softmax over the seven emotions on ``features``."""
    x = layers.Dropout(dropout, name="dropout")(features)
    return keras.Model(inputs, layers.Dense(NUM_CLASSES, activation="softmax", name="scores")(x), name=name)


def custom_cnn(stem: int = 32, widths: tuple[int, ...] = (48, 96, 192), dropout: float = 0.4) -> keras.Model:
    """This project's CNN for 48x48 grayscale faces, designed for accuracy per CPU-second.

    A single 3x3 conv at full resolution (the costly level) and a max-pool to 24x24, then VGG-style
    stages of two 3x3 conv + BN + ReLU and a 2x2 max-pool (24 -> 12 -> 6 -> 3) while the width
    doubles; the 3x3 map is flattened, keeping where on the face a feature fired, into a
    dropout-regularised softmax. About 0.06 GMACs a face.
    """
    inputs = keras.Input(INPUT_SHAPE, name="face")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = _conv_bn_relu(x, stem, "stem")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    for stage, width in enumerate(widths, start=1):
        x = _conv_stage(x, (width, width), (f"s{stage}a", f"s{stage}b"), f"s{stage}_pool")
    return _softmax_head(inputs, layers.Flatten(name="flatten")(x), dropout, "custom_cnn")


def _applications_model(name: str, backbone_fn: Callable, preprocess: layers.Layer,
                        weights: str | None, dropout: float = 0.4) -> keras.Model:
    """A keras.applications backbone fed grayscale faces (the channel repeated three times).

    The backbone is built on this model's own tensors (``input_tensor``), so its layers are this
    model's layers: no nested model to reach into for Grad-CAM or a warm restart.
    """
    inputs = keras.Input(INPUT_SHAPE, name="face")
    rgb = layers.Concatenate(name="gray_to_rgb")([inputs, inputs, inputs])
    backbone = backbone_fn(include_top=False, weights=weights, input_tensor=preprocess(rgb))
    return _softmax_head(inputs, layers.GlobalAveragePooling2D(name="pool")(backbone.output), dropout, name)


def vgg16(weights: str | None = None) -> keras.Model:
    """VGG16 (keras.applications); preprocessing as in ``vgg16.preprocess_input`` (mean subtraction)."""
    # Caffe-style: BGR channel means subtracted; on a gray image the channel order does not matter.
    preprocess = layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0],
                                      name="vgg_preprocess")
    return _applications_model("vgg16", keras.applications.VGG16, preprocess, weights)


def resnet50v2(weights: str | None = None) -> keras.Model:
    """ResNet50V2 (keras.applications); pixels scaled to [-1, 1] as ``resnet_v2.preprocess_input`` does."""
    preprocess = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="resnet_preprocess")
    return _applications_model("resnet50v2", keras.applications.ResNet50V2, preprocess, weights)


# torchvision's vgg16_bn layout: 13 3x3 convs in five stages ("M": 2x2 max-pool).
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16_bn(dropout: float = 0.5) -> keras.Model:
    """VGG16 with batch normalization after every conv (torchvision's ``vgg16_bn``) for 48x48 faces.

    keras.applications' VGG16 has no batch normalization and trains slowly from scratch; this is the
    same 13-conv network with BN, which trains from scratch in a fraction of the epochs. Five 2x2
    pools take 48x48 to 1x1; a dropout-regularised softmax sits on the 512 pooled features.
    """
    inputs = keras.Input(INPUT_SHAPE, name="face")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for stage, widths in enumerate(VGG16_STAGES, start=1):
        names = [f"block{stage}_conv{i}" for i in range(1, len(widths) + 1)]
        x = _conv_stage(x, widths, names, f"block{stage}_pool")
    return _softmax_head(inputs, layers.GlobalAveragePooling2D(name="pool")(x), dropout, "vgg16_bn")


@dataclass(frozen=True)
class Architecture:
    """What the rest of the package may know about an architecture, in one place."""

    name: str
    builder: Callable[..., keras.Model]
    preprocessing: str  # how raw 0-255 gray pixels become the network's input (layers inside the model)
    gradcam_layer: str  # the feature map Grad-CAM explains (a layer of the built network)
    pretrained: tuple[str, ...] = ()  # weights it can start from besides random ("imagenet": needs internet)
    input_size: int = IMAGE_SIZE
    tta_modes: tuple[str, ...] = TTA_MODES  # the test-time augmentations training chooses among

    def build(self, weights: str | None = None) -> keras.Model:
        if weights in (None, "none"):
            return self.builder() if not self.pretrained else self.builder(weights=None)
        if weights not in self.pretrained:
            raise ConfigError(f"{self.name} has no {weights!r} weights: use "
                              f"{', '.join(('none', *self.pretrained))}.")
        return self.builder(weights=weights)


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture("custom_cnn", custom_cnn, "pixels / 255", gradcam_layer="s3b_relu"),
    Architecture("vgg16", vgg16, "gray to RGB, ImageNet channel means subtracted (Caffe style)",
                 gradcam_layer="block5_conv3", pretrained=("imagenet",)),
    Architecture("vgg16_bn", vgg16_bn, "pixels / 255", gradcam_layer="block5_conv3_relu"),
    Architecture("resnet50v2", resnet50v2, "gray to RGB, pixels scaled to [-1, 1]",
                 gradcam_layer="conv4_block6_out", pretrained=("imagenet",)),
]}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownModelError(f"Unknown architecture {name!r}: choose one of {', '.join(ARCHITECTURES)}.") from None


def build_model(name: str, weights: str | None = None) -> keras.Model:
    """Build architecture ``name`` (see ARCHITECTURES); ``weights='imagenet'`` needs internet."""
    return architecture(name).build(weights)


@keras.saving.register_keras_serializable(package="fer")
class Shift(layers.Layer):
    """Translate images by (dy, dx) pixels, filling the border by reflection (for shift TTA)."""

    def __init__(self, dy: int = 0, dx: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.dy, self.dx = int(dy), int(dx)

    def call(self, inputs):
        p = max(abs(self.dy), abs(self.dx))
        if p == 0:
            return inputs
        padded = keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")
        h, w = inputs.shape[1], inputs.shape[2]
        return padded[:, p - self.dy:p - self.dy + h, p - self.dx:p - self.dx + w, :]

    def get_config(self):
        return {**super().get_config(), "dy": self.dy, "dx": self.dx}


@keras.saving.register_keras_serializable(package="fer")
class StackViews(layers.Layer):
    """Stack V views of a batch of N images into one batch of V*N, view by view."""

    def call(self, inputs):
        return keras.ops.concatenate(inputs, axis=0)

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[0][1:])


@keras.saving.register_keras_serializable(package="fer")
class MeanOverViews(layers.Layer):
    """Scores (V*N, C) of V stacked views -> their mean per image (N, C)."""

    def __init__(self, views: int, **kwargs):
        super().__init__(**kwargs)
        self.views = int(views)

    def call(self, inputs):
        return keras.ops.mean(keras.ops.reshape(inputs, (self.views, -1, inputs.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "views": self.views}


SHIFT_PIXELS = 2
SHIFTS = ((SHIFT_PIXELS, 0), (-SHIFT_PIXELS, 0), (0, SHIFT_PIXELS), (0, -SHIFT_PIXELS))
"""``flip_shift``'s offsets (dy, dx), each applied to the face and to its mirror image."""


def with_tta(model: keras.Model, mode: str = "flip") -> keras.Model:
    """Wrap ``model`` so it returns the mean of its scores over test-time views of the face.

    ``flip``: the face and its mirror image; ``flip_shift``: those two, each also shifted by
    SHIFT_PIXELS up, down, left and right (10 views); ``none``: the model itself.
    """
    if mode == "none":
        return model
    if mode not in TTA_MODES:
        raise ConfigError(f"Unknown test-time augmentation {mode!r}: use one of {', '.join(TTA_MODES)}.")
    inputs = keras.Input(INPUT_SHAPE, name="face")
    views = [inputs, HorizontalFlip(name="mirror")(inputs)]
    if mode == "flip_shift":
        views += [Shift(dy, dx, name=f"shift_{k}_{i}")(view) for k, view in enumerate(views[:2])
                  for i, (dy, dx) in enumerate(SHIFTS)]
    # One forward pass over every view stacked on the batch axis: on a CPU, a batch of 10 costs far
    # less than 10 batches of one.
    scores = model(StackViews(name="views")(views))
    outputs = MeanOverViews(len(views), name=f"{mode}_tta")(scores)
    return keras.Model(inputs, outputs, name=f"{model.name}_tta")


@keras.saving.register_keras_serializable(package="fer")
class TemperatureScaling(layers.Layer):
    """Probabilities -> ``softmax(log p / T)``: temperature scaling of scores that are already probabilities
    (see fer.calibration, whose ``apply_temperature`` is the same transform in numpy)."""

    def __init__(self, temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, inputs):
        logits = keras.ops.log(keras.ops.maximum(inputs, EPSILON))
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` with its probabilities temperature-scaled (the model itself when T = 1)."""
    if temperature == 1:
        return model
    outputs = TemperatureScaling(temperature, name="temperature")(model.output)
    return keras.Model(model.inputs, outputs, name=model.name)


def traced_inference(model: keras.Model, freeze: bool = True):
    """``x -> model(x, training=False)`` as one traced TensorFlow graph, with ``freeze`` the weights frozen
    into it: much cheaper per call than ``model.predict``, and frozen cheaper than the traced call on the
    variables.

    Freezing turns the variables into constants, so TensorFlow's graph optimizer folds each batch
    normalization into the convolution before it and drops the variable reads; the scores stay equal to
    about 1e-7 (tests/test_models.py). The README's Speed section has what it saved end to end, and what it
    costs: a few seconds once per model, at load. ``convert_variables_to_constants_v2`` (not in
    TensorFlow's public namespace) is the freezing step TensorFlow's own TFLite converter uses.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # One trace for any batch; no Python control flow to convert, so no AutoGraph (whose source
    # inspection of this closure only logs a warning).
    @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)], autograph=False)
    def infer(x):
        return model(x, training=False)

    if not freeze:
        return infer
    frozen = convert_variables_to_constants_v2(infer.get_concrete_function())

    def call(x) -> tf.Tensor:
        (probs,) = frozen(tf.convert_to_tensor(x, tf.float32))
        return probs

    return call
