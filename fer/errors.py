"""One exception type per user-facing failure; each message says what to do.

Everything the package raises on purpose is a ``FerError``: the command lines print its message on one
line and exit with status 2, the app shows it; anything else is a bug.
"""


import sys
from collections.abc import Callable


class FerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(FerError):
    """An option has a value the pipeline does not know (a schedule, a strategy, class weights ...)."""


class DatasetError(FerError):
    """A data source cannot be read: wrong layout, bad CSV row, empty split."""


class ImageError(FerError):
    """An image cannot be decoded or is outside what the pipeline accepts."""


class UnknownModelError(FerError):
    """A model name is neither an architecture, a zoo entry, nor a file."""


class ZooError(FerError):
    """A zoo entry is missing, incomplete or fails its integrity check."""


class TrainingError(FerError):
    """A run cannot start or resume as asked (a run folder already in use, a missing backup, weights that
    do not fit)."""


class DetectorError(FerError):
    """The face detector cannot be loaded."""


class VideoError(FerError):
    """A video cannot be read (missing, empty, corrupt), is outside what the pipeline accepts, or shows no face."""


def run_command(action: Callable[[], object]) -> int:
    """The exit status of a command-line action: the int it returns (0 when it returns anything else), or 2
    after printing a FerError as one ``error: ...`` line on stderr."""
    try:
        status = action()
    except FerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0
