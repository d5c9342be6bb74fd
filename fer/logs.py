"""Quiet start: TensorFlow's C++ logs and the CUDA probe silenced before TensorFlow is imported.

The entry points (train.py, ``python -m fer``, app.py) call ``quiet_tensorflow`` first thing; their
``-v`` / ``--verbose`` brings the logs back.
"""

from __future__ import annotations

import os
import sys


def verbose_requested(argv: list[str] | None = None) -> bool:
    return any(a in ("-v", "--verbose") for a in (sys.argv[1:] if argv is None else argv))


def quiet_tensorflow(verbose: bool = False) -> None:
    """Unless ``verbose``: only TensorFlow's fatal C++ messages, and no CUDA probe on a machine with no
    NVIDIA GPU (its 'failed call to cuInit' reads like an error on a normal CPU machine)."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if not os.path.exists("/dev/nvidia0") and not os.path.exists("/dev/nvidiactl"):
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
