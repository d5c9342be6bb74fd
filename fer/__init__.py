"""Facial-emotion recognition on FER-2013: data, models, training, evaluation, a model zoo and a demo.

Importing the package does nothing but define names: no logging set-up, no TensorFlow configuration,
no model loading. The pipeline lives in one module per stage, in two flows that never meet::

    training:   data -> augment -> models -> training -> evaluation -> export
    read side:  zoo -> inference -> render / explain   (and app.py)
"""

from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "IMAGE_SIZE", "NUM_CLASSES", "__version__"]
