"""The seven FER-2013 emotions, defined once, and the folder-name aliases other datasets use."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER-2013's label order: index i is the class id used in ``fer2013.csv``."""

NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48
"""Faces are IMAGE_SIZE x IMAGE_SIZE grayscale, as in FER-2013."""

LABEL_ALIASES: dict[str, str] = {
    **{name: name for name in EMOTIONS},
    "anger": "angry",
    "mad": "angry",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}
"""Folder names seen in FER-2013, CK+, RAF-DB, JAFFE and friends, mapped onto EMOTIONS."""

UNMAPPED_LABELS = frozenset({"contempt"})
"""Classes other datasets have and FER-2013 has not (CK+'s contempt): skipped with a warning."""


def canonical_emotion(name: str) -> str | None:
    """Return the FER-2013 emotion a folder name stands for, or None if it has no counterpart."""
    return LABEL_ALIASES.get(name.strip().lower())
