"""Read FER-2013 in the forms people have it and cut it into train / validation / test splits.

Three sources are understood:

* the Kaggle image-folder layout: ``train/<emotion>/*.jpg`` and ``test/<emotion>/*.jpg``;
* a single tree of emotion folders (one split; alias names such as ``anger`` or ``sadness`` map
  onto FER-2013's labels, classes without a counterpart such as CK+'s ``contempt`` are skipped);
* the original ``fer2013.csv`` (``emotion,pixels,Usage``).

Everything is decoded into uint8 arrays of shape (N, 48, 48) once; a full FER-2013 loads in seconds.
"""

from __future__ import annotations

import csv
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer.errors import DatasetError
from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES, UNMAPPED_LABELS, canonical_emotion

log = logging.getLogger(__name__)

CSV_HEADER = ["emotion", "pixels", "Usage"]
CSV_USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
OFFICIAL_SPLITS = tuple(CSV_USAGE_TO_SPLIT)  # Kaggle's image files are named after them: PublicTest_123.jpg


@dataclass
class Split:
    """One split of a dataset: faces as uint8 (N, 48, 48) and integer labels indexing EMOTIONS."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    origin: str = ""  # the official split the faces come from, where known: "PublicTest", "PrivateTest" ...

    @property
    def source_name(self) -> str:
        """What to call these faces in a report: the official split where known, else the split's name."""
        return self.origin or self.name

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)


@dataclass
class Dataset:
    """The splits of one data source, plus the files that could not be read."""

    source: str
    kind: str  # "folders", "tree" or "csv"
    train: Split
    val: Split
    test: Split
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.source} ({self.kind})"]
        for split in (self.train, self.val, self.test):
            counts = ", ".join(f"{e} {c}" for e, c in zip(EMOTIONS, split.class_counts()))
            lines.append(f"  {split.name:5s} {len(split):6d}  [{counts}]")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} unreadable files")
        return "\n".join(lines)


def detect_kind(path: Path) -> str:
    """Tell which of the three source forms ``path`` is."""
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{path} is a file but not a .csv: pass fer2013.csv or a folder of emotion folders.")
    if not path.is_dir():
        raise DatasetError(f"{path} does not exist: pass a fer2013.csv, a folder with train/ and test/, "
                           "or a folder of emotion folders.")
    if (path / "fer2013.csv").is_file():
        return "csv"
    if (path / "train").is_dir() and (path / "test").is_dir():
        return "folders"
    return "tree"


def load_dataset(path: str | os.PathLike, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Load a data source and split it into train, validation and test.

    CSV: the official Usage column (Training / PublicTest / PrivateTest). Kaggle folders: train minus a
    seeded, stratified ``val_fraction`` slice of it, and test. A single tree: a seeded stratified
    split into train, validation and test (``val_fraction`` each for the last two).
    """
    path = Path(path)
    kind = detect_kind(path)
    if kind == "csv":
        csv_path = path if path.is_file() else path / "fer2013.csv"
        splits = _read_csv(csv_path)
        dataset = Dataset(str(path), kind, splits["train"], splits["val"], splits["test"])
    elif kind == "folders":
        train, skipped = read_tree(path / "train", "train")
        test, skipped_test = read_tree(path / "test", "test")
        train, val = stratified_split(train, val_fraction, seed, ("train", "val"))
        dataset = Dataset(str(path), kind, train, val, test, skipped + skipped_test)
    else:
        everything, skipped = read_tree(path, "all")
        rest, test = stratified_split(everything, val_fraction, seed, ("rest", "test"))
        train, val = stratified_split(rest, val_fraction / (1 - val_fraction), seed, ("train", "val"))
        dataset = Dataset(str(path), kind, train, val, test, skipped)
    for split in (dataset.train, dataset.val, dataset.test):
        _require_nonempty(split, path)
    return dataset


def load_eval_split(path: str | os.PathLike) -> Split:
    """The split ``evaluate`` scores: the test split of a CSV or Kaggle layout, a plain tree whole."""
    path = Path(path)
    kind = detect_kind(path)
    if kind == "csv":
        split = _read_csv(path if path.is_file() else path / "fer2013.csv")["test"]
    elif kind == "folders":
        split, _ = read_tree(path / "test", "test")
    else:
        split, _ = read_tree(path, "all")
    _require_nonempty(split, path)
    return split


def load_training_faces(path: str | os.PathLike) -> np.ndarray | None:
    """Every face of the source's official training split, its validation slice included (CSV: Training; Kaggle
    folders: train/), or None for a single emotion tree, whose splits are cut from the same faces."""
    path = Path(path)
    kind = detect_kind(path)
    if kind == "csv":
        return _read_csv(path if path.is_file() else path / "fer2013.csv")["train"].images
    if kind == "folders":
        return read_tree(path / "train", "train")[0].images
    return None


def seen_in(known: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Which of ``faces`` are pixel for pixel one of the ``known`` faces (FER-2013 repeats faces across its splits)."""
    known_bytes = {face.tobytes() for face in known}
    return np.fromiter((face.tobytes() in known_bytes for face in faces), dtype=bool, count=len(faces))


def _require_nonempty(split: Split, path: Path) -> None:
    if len(split) == 0:
        raise DatasetError(f"The {split.name} split of {path} is empty: check that it holds faces "
                           f"in emotion folders ({', '.join(EMOTIONS)}) or CSV rows for that split.")


def stratified_split(split: Split, fraction: float, seed: int, names: tuple[str, str]) -> tuple[Split, Split]:
    """Cut a seeded, class-stratified ``fraction`` off ``split``; returns (rest, slice)."""
    from sklearn.model_selection import train_test_split

    if len(split) == 0:
        return Split(names[0], split.images, split.labels), Split(names[1], split.images, split.labels)
    counts = split.class_counts()
    stratify = split.labels if counts[counts > 0].min() >= 2 else None
    idx_rest, idx_slice = train_test_split(
        np.arange(len(split)), test_size=fraction, random_state=seed, stratify=stratify)
    idx_rest.sort()
    idx_slice.sort()
    return (Split(names[0], split.images[idx_rest], split.labels[idx_rest]),
            Split(names[1], split.images[idx_slice], split.labels[idx_slice]))


def _class_folders(root: Path) -> list[tuple[Path, int]]:
    """Emotion folders under ``root`` with their label ids; warns about folders it skips."""
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder.")
    folders = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = canonical_emotion(child.name)
        if emotion is None:
            why = "has no FER-2013 counterpart" if child.name.lower() in UNMAPPED_LABELS else "is not an emotion name"
            log.warning("Skipping class folder %s: '%s' %s.", child, child.name, why)
            continue
        folders.append((child, EMOTIONS.index(emotion)))
    return folders


def _decode_face(path: Path) -> np.ndarray | None:
    """A 48x48 uint8 grayscale face from an image file, or None if it is not a readable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def read_tree(root: Path, name: str) -> tuple[Split, list[tuple[str, str]]]:
    """Read ``root/<emotion>/*`` into a Split; unreadable files are skipped, counted and logged."""
    files: list[Path] = []
    labels: list[int] = []
    for folder, label in _class_folders(root):
        for f in sorted(folder.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                files.append(f)
                labels.append(label)
    # cv2.imdecode releases the GIL, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        faces = list(pool.map(_decode_face, files, chunksize=256))
    skipped = [(str(f), "not a readable image") for f, face in zip(files, faces) if face is None]
    for path, reason in skipped[:10]:
        log.warning("Skipping %s: %s.", path, reason)
    if len(skipped) > 10:
        log.warning("... and %d more unreadable files skipped.", len(skipped) - 10)
    keep = [i for i, face in enumerate(faces) if face is not None]
    images = np.stack([faces[i] for i in keep]) if keep else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    origin = next((o for o in OFFICIAL_SPLITS if files and all(f.name.startswith(f"{o}_") for f in files)), "")
    return Split(name, images, np.asarray([labels[i] for i in keep], dtype=np.int64), origin), skipped


def _read_csv(path: Path) -> dict[str, Split]:
    """Parse fer2013.csv; a wrong header, a bad pixel row or a bad label fails naming the line."""
    n_pixels = IMAGE_SIZE * IMAGE_SIZE
    rows: dict[str, tuple[list[np.ndarray], list[int]]] = {s: ([], []) for s in CSV_USAGE_TO_SPLIT.values()}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != CSV_HEADER:
            raise DatasetError(f"{path}:1: expected the header {','.join(CSV_HEADER)}, found {header!r}.")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise DatasetError(f"{path}:{line_no}: expected 3 fields (emotion,pixels,Usage), found {len(row)}.")
            emotion, pixels, usage = row
            try:
                label = int(emotion)
            except ValueError:
                raise DatasetError(f"{path}:{line_no}: emotion {emotion!r} is not an integer 0-6.") from None
            if not 0 <= label < NUM_CLASSES:
                raise DatasetError(f"{path}:{line_no}: emotion {label} is out of range 0-{NUM_CLASSES - 1}.")
            split = CSV_USAGE_TO_SPLIT.get(usage.strip())
            if split is None:
                raise DatasetError(f"{path}:{line_no}: Usage {usage!r} is not one of {', '.join(CSV_USAGE_TO_SPLIT)}.")
            try:
                values = np.array(pixels.split(), dtype=np.int32)
            except ValueError:
                raise DatasetError(f"{path}:{line_no}: pixels must be integers 0-255 separated by spaces.") from None
            if values.size != n_pixels:
                raise DatasetError(f"{path}:{line_no}: expected {n_pixels} pixels, found {values.size}.")
            if values.min() < 0 or values.max() > 255:
                raise DatasetError(f"{path}:{line_no}: pixel values must lie in 0-255.")
            rows[split][0].append(values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            rows[split][1].append(label)
    origins = {split: usage for usage, split in CSV_USAGE_TO_SPLIT.items()}
    return {
        name: Split(name,
                    np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
                    np.asarray(labels, dtype=np.int64), origins[name])
        for name, (images, labels) in rows.items()
    }
