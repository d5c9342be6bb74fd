"""TensorFlow Lite (LiteRT) export: the same float32 network in a lighter runtime for CPU inference.

    python -m fer zoo export-tflite custom_cnn --data ../shared/fer2013   # -> exports/custom_cnn.tflite

No quantization: the weights stay float32, so scores match the Keras model to about 1e-6. The export
is kept only if its accuracy on the validation slice equals the Keras model's within MAX_ACCURACY_DROP.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from fer.labels import IMAGE_SIZE

log = logging.getLogger(__name__)

MAX_ACCURACY_DROP = 0.001
"""An export whose validation accuracy differs from the Keras model's by more than this is refused."""


def export_tflite(model, path: Path) -> Path:
    """Convert a Keras model (taking one 48x48x1 float face) to a .tflite file."""
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(path), format="litert", verbose=False,
                 input_signature=[keras.InputSpec(shape=(1, IMAGE_SIZE, IMAGE_SIZE, 1), dtype="float32")])
    return path


def _interpreter(path: Path, num_threads: int | None):
    try:  # the LiteRT package, where installed; TensorFlow's own interpreter otherwise
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": it still ships in TF 2.21
            return tf.lite.Interpreter(str(path), num_threads=num_threads)
    return Interpreter(str(path), num_threads=num_threads)


class LiteModel:
    """A .tflite model behind the calls the rest of ``fer`` makes on a Keras model."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.path = Path(path)
        self.name = self.path.stem
        # Every core: TFLite's default of one thread is slower than the Keras call on a 2-core CPU.
        self._interpreter = _interpreter(self.path, num_threads or os.cpu_count())
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def __call__(self, x) -> np.ndarray:
        """Scores (N, 7) for float faces (N, 48, 48, 1), one face per invocation (batch-1 export)."""
        x = np.asarray(x, dtype=np.float32)
        out = []
        for face in x:
            self._interpreter.set_tensor(self._input, face[None])
            self._interpreter.invoke()
            out.append(self._interpreter.get_tensor(self._output)[0].copy())
        return np.stack(out) if out else np.zeros((0, 7), np.float32)

    def predict(self, x, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        return self(x)
