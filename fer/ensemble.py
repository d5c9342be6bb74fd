"""The ensemble, defined once: the mean of its members' probabilities.

It exists only when the zoo holds at least MIN_MEMBERS models (an ensemble of one is a copy of its
member). ``combine`` is the one definition; the Recognizer applies it to scores it already has, and
``ensemble_model`` builds it into a Keras model for evaluation and export. Importing this module
imports no Keras.
"""

from __future__ import annotations

ENSEMBLE = "ensemble"
MIN_MEMBERS = 2


def has_ensemble(members) -> bool:
    """Whether ``members`` (model names) make an ensemble."""
    return len(members) >= MIN_MEMBERS


def combine(scores):
    """The ensemble's probabilities (N, 7) from its members' stacked (M, N, 7): their mean. Takes an array
    or a Keras tensor."""
    import keras

    return keras.ops.mean(scores, axis=0)


def ensemble_model(members: dict):
    """A Keras model scoring faces with every member ({name: model}) and combining their probabilities
    (never saved: the zoo stores members, not ensembles)."""
    import keras

    from fer.models import INPUT_SHAPE

    class Combine(keras.layers.Layer):
        def call(self, inputs):
            return combine(keras.ops.stack(inputs, axis=0))

        def compute_output_shape(self, input_shape):
            return input_shape[0]

    inputs = keras.Input(INPUT_SHAPE, name="face")
    # Each member under its zoo name: two entries of one architecture share their networks' names.
    named = [keras.Model(m.input, m.output, name=name) for name, m in members.items()]
    return keras.Model(inputs, Combine(name="ensemble_mean")([m(inputs) for m in named]), name=ENSEMBLE)
