"""One exception type per user-facing failure; each message says what to do."""


class FerError(Exception):
    """Base class of every error this package raises on purpose."""


class DatasetError(FerError):
    """A data source cannot be read: wrong layout, bad CSV row, empty split."""


class ImageError(FerError):
    """An image cannot be decoded or is outside what the pipeline accepts."""


class UnknownModelError(FerError):
    """A model name is neither an architecture, a zoo entry, nor a file."""


class ZooError(FerError):
    """A zoo entry is missing, incomplete or fails its integrity check."""
