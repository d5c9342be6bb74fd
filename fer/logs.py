"""Quiet start: TensorFlow's C++ logs and the CUDA probe silenced before TensorFlow is imported.

The entry points (train.py, app.py, the ``python -m fer`` commands that load models) call
``quiet_tensorflow`` before anything imports TensorFlow; their ``-v`` / ``--verbose`` brings the logs back.
"""

from __future__ import annotations

import os
import sys


def verbose_requested(argv: list[str] | None = None) -> bool:
    return any(a in ("-v", "--verbose") for a in (sys.argv[1:] if argv is None else argv))


def quiet_tensorflow(verbose: bool = False) -> None:
    """Unless ``verbose``: import TensorFlow now with only its fatal messages, and without the CUDA probe
    on a machine with no NVIDIA GPU (its 'failed call to cuInit' reads like an error on a CPU machine).

    TF_CPP_MIN_LOG_LEVEL does not reach the lines TensorFlow's libraries print while they load (oneDNN,
    cudart), so the import itself runs with stderr pointed at /dev/null. Nothing happens on another
    Keras backend (JAX on a GPU machine) or when TensorFlow is already imported.
    """
    if verbose or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not os.path.exists("/dev/nvidiactl"):
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
