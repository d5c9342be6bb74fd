"""The ensemble, defined once: the mean of its members' probabilities, then its own temperature.

It exists only when the zoo holds at least MIN_MEMBERS models (an ensemble of one is a copy of its
member). ``combine`` is the one definition; the Recognizer applies it to scores it already has, and
``ensemble_model`` builds it into a Keras model for evaluation and export. Importing this module
imports no Keras.

The mean of calibrated members is not calibrated itself: where they disagree it is less confident than
its accuracy warrants. So the ensemble has a temperature of its own, fitted on the validation mean of its
calibrated members (``python -m fer zoo calibrate ensemble``; 1 until fitted).
"""

from __future__ import annotations

ENSEMBLE = "ensemble"
MIN_MEMBERS = 2


def has_ensemble(members) -> bool:
    """Whether ``members`` (model names) make an ensemble."""
    return len(members) >= MIN_MEMBERS


def combine(scores, temperature: float = 1.0):
    """The ensemble's probabilities (N, 7) from its members' stacked (M, N, 7) ones: their mean, scaled by the
    ensemble's ``temperature`` (fer.calibration.apply_temperature). Takes an array, or at T = 1 a Keras tensor
    (``ensemble_model`` applies the temperature as a layer)."""
    import keras

    mean = keras.ops.mean(scores, axis=0)
    if temperature == 1:
        return mean
    from fer.calibration import apply_temperature

    return apply_temperature(keras.ops.convert_to_numpy(mean), temperature)


def ensemble_model(members: dict, temperature: float = 1.0):
    """A Keras model scoring faces with every member ({name: model}) and combining their probabilities, then
    scaling them by ``temperature`` (never saved: the zoo stores members, not ensembles)."""
    import keras

    from fer.models import INPUT_SHAPE, with_temperature

    class Combine(keras.layers.Layer):
        def call(self, inputs):
            return combine(keras.ops.stack(inputs, axis=0))

        def compute_output_shape(self, input_shape):
            return input_shape[0]

    inputs = keras.Input(INPUT_SHAPE, name="face")
    # Each member under its zoo name: two entries of one architecture share their networks' names.
    named = [keras.Model(m.input, m.output, name=name) for name, m in members.items()]
    mean = keras.Model(inputs, Combine(name="ensemble_mean")([m(inputs) for m in named]), name=ENSEMBLE)
    return with_temperature(mean, temperature)
