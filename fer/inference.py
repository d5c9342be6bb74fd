"""Inference: image -> faces -> 48x48 crops -> scores per model -> result.

``Recognizer`` loads the zoo's models once and scores every face with any of them, or with
``ensemble`` (fer.ensemble: the mean of its members' probabilities at its own temperature, offered with two
members or more; the
members are the zoo models chosen on validation, see fer.zoo.ensemble_members)::

    recognizer = Recognizer.from_zoo()
    result = recognizer.predict("photo.jpg", models=["custom_cnn"])
    result.faces[0].scores["custom_cnn"]["happy"]
    result.faces[0].uncertain["custom_cnn"]  # top score below the model's validated threshold

Scores from the zoo are calibrated (fer.zoo.load_model applies each entry's temperature; the ensemble
averages calibrated members, then applies its own), and each model's uncertain threshold comes with its calibration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer.calibration import Calibration
from fer.ensemble import ENSEMBLE, combine, has_ensemble
from fer.errors import UnknownModelError
from fer.faces import (
    DEFAULT_DETECTOR,
    Box,
    crop_face,
    detect_faces,
    detector_spec,
    eye_angle,
    load_image,
    reading_order,
)
from fer.labels import EMOTIONS, IMAGE_SIZE

log = logging.getLogger(__name__)

MAX_FACES = 20
"""At most this many faces (the largest) are classified per image: it caps what one request costs."""


@dataclass
class Face:
    """One face: its box (None when the whole image was classified), scores per model, per model whether
    the top score is below that model's uncertain threshold (None: the model has no threshold), and the
    detector's confidence that it is a face (None: the detector gives none, or no detector found it)."""

    box: Box | None
    scores: dict[str, dict[str, float]]
    crop: np.ndarray = field(repr=False, default=None)
    scale: float = 1.0  # from the working image's pixels to the original image's
    uncertain: dict[str, bool | None] = field(default_factory=dict)
    confidence: float | None = None
    levelled_by: float | None = None  # the eyes' tilt in degrees, corrected in the crop (None: not levelled)

    @property
    def original_box(self) -> list[int] | None:
        """The box [x, y, w, h] in the pixels of the image as it was given."""
        if self.box is None:
            return None
        return [round(v * self.scale) for v in self.box.to_list()]

    def top(self, model: str) -> tuple[str, float]:
        emotion = max(self.scores[model], key=self.scores[model].get)
        return emotion, self.scores[model][emotion]

    def is_uncertain(self, model: str) -> bool:
        return bool(self.uncertain.get(model))

    def to_dict(self) -> dict:
        return {"box": self.original_box, "confidence": self.confidence, "scores": self.scores,
                "uncertain": self.uncertain}


@dataclass
class ImageResult:
    """Every face found in one image; ``whole_image`` when no face was detected and the image was
    classified as one face. ``image`` is the working copy (at most MAX_SIDE pixels a side) that the
    faces' ``box`` refer to; ``to_dict`` gives boxes in the original image's pixels. ``detector`` names the
    face detector (fer.faces.DETECTORS) that found them."""

    faces: list[Face]
    image: np.ndarray = field(repr=False, default=None)
    whole_image: bool = False
    detector: str = DEFAULT_DETECTOR

    def to_dict(self) -> dict:
        return {"detector": self.detector, "faces": [f.to_dict() for f in self.faces], "whole_image": self.whole_image}


def choose_models(models: str | list[str] | None, offered: list[str]) -> list[str]:
    """``models`` (None or ``all``: every one offered; a name; a list of names) as names from ``offered``."""
    if models in (None, "all"):
        return list(offered)
    names = [models] if isinstance(models, str) else list(models)
    for name in names:
        if name not in offered:
            raise UnknownModelError(f"Unknown model {name!r}: choose from {', '.join(offered)} or all.")
    return names


def zoo_request(models: str | list[str] | None, zoo_dir: Path | None = None) -> tuple[list[str], list[str] | None]:
    """``models`` (as ``Recognizer.resolve`` takes them) checked against what the zoo offers before anything loads,
    so that a misspelt name fails at once; and what ``Recognizer.from_zoo`` must load for them: the models named,
    or None (every model) for the ensemble or a model only the manifest names."""
    from fer.zoo import available_models, list_entries

    offered = available_models(zoo_dir)
    names = choose_models(models, [*offered, *([ENSEMBLE] if has_ensemble(offered) else [])])
    return names, names if set(names) <= {e.name for e in list_entries(zoo_dir)} else None


class Recognizer:
    """Scores faces with loaded Keras models; models load once, at construction. ``calibrations`` (by model
    name, ``ensemble`` included) give the uncertain thresholds; a model without one is never called
    uncertain (its faces' ``uncertain`` is None). ``freeze`` (fer.models.traced_inference) makes every later
    face cheaper for a few seconds per model now: right for a server or a long video, not for a one-shot
    command."""

    def __init__(self, models: dict[str, object], calibrations: dict[str, Calibration | None] | None = None,
                 ensemble_members: list[str] | None = None, freeze: bool = True):
        if not models:
            raise UnknownModelError("No models to load: train one with train.py or check model_zoo/.")
        from fer.models import traced_inference  # Keras loads with the models, not with this module

        self.models = dict(models)
        self.calibrations = dict(calibrations or {})
        self.ensemble_members = [n for n in self.models if ensemble_members is None or n in ensemble_members]
        self._fns = {name: traced_inference(m, freeze) for name, m in self.models.items()}
        self.score_crops(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8), list(self.models))  # warm once now

    @classmethod
    def from_zoo(cls, zoo_dir: Path | None = None, names: list[str] | None = None,
                 freeze: bool = True) -> "Recognizer":
        from fer.zoo import available_models, ensemble_record, load_model, read_calibration

        wanted = names or available_models(zoo_dir)  # models only the manifest names come from the Hub
        models = {name: load_model(name, zoo_dir) for name in wanted}
        calibrations = {name: read_calibration(name, zoo_dir) for name in wanted}
        chosen = None
        if has_ensemble(wanted):
            record = ensemble_record(zoo_dir)  # the members chosen on validation, when all of them are loaded
            chosen = list(record["members"]) if record and set(record["members"]) <= set(wanted) else None
            calibrations[ENSEMBLE] = record["calibration"] if chosen else None
        return cls(models, calibrations, chosen, freeze)

    @property
    def has_ensemble(self) -> bool:
        return has_ensemble(self.ensemble_members)

    @property
    def model_names(self) -> list[str]:
        """Every loaded model, plus ``ensemble`` when it has two members or more."""
        return [*self.models, *([ENSEMBLE] if self.has_ensemble else [])]

    @property
    def ensemble_temperature(self) -> float:
        """The ensemble's own temperature (1 while it has no calibration)."""
        calibration = self.calibrations.get(ENSEMBLE)
        return calibration.temperature if calibration else 1.0

    def uncertain_threshold(self, model: str) -> float | None:
        """The top score below which ``model`` calls a face uncertain (None: it has no validated threshold)."""
        calibration = self.calibrations.get(model)
        return calibration.uncertain_threshold if calibration else None

    def is_uncertain(self, model: str, probs: np.ndarray) -> bool | None:
        """Whether ``model`` is uncertain about a face it scored ``probs`` (None: it has no threshold)."""
        calibration = self.calibrations.get(model)
        return None if calibration is None else calibration.is_uncertain(float(np.max(probs)))

    def resolve(self, models: str | list[str] | None) -> list[str]:
        return choose_models(models, self.model_names)

    def score_crops(self, crops: np.ndarray, models: str | list[str] | None = None) -> dict[str, np.ndarray]:
        """Probabilities (N, 7) per model for uint8 faces (N, 48, 48)."""
        names = self.resolve(models)
        x = np.asarray(crops, dtype=np.float32)[..., None]
        needed = set(names) | (set(self.ensemble_members) if ENSEMBLE in names else set())
        raw = {name: np.asarray(self._fns[name](x)) for name in self.models if name in needed}
        out = {name: raw[name] for name in names if name != ENSEMBLE}
        if ENSEMBLE in names:
            out[ENSEMBLE] = np.asarray(combine(np.stack([raw[n] for n in self.ensemble_members]),
                                               self.ensemble_temperature))
        return out

    def predict(self, image, models: str | list[str] | None = None, whole_image_if_no_face: bool = False,
                max_faces: int = MAX_FACES, detector: str = DEFAULT_DETECTOR, level: bool = True) -> ImageResult:
        """Find every face in ``image`` (bytes, path or array) with ``detector`` (a name in
        fer.faces.DETECTORS) and score it with ``models``; faces are numbered in reading order (rows top to
        bottom, left to right), the largest ``max_faces`` kept. With ``level``, a face whose eyes the
        detector found is turned upright (eyes level) before it is cropped."""
        detector_spec(detector)  # an unknown name fails before the image is decoded
        self.resolve(models)
        rgb, scale = load_image(image)
        found = reading_order(detect_faces(rgb, detector, max_faces=max_faces))
        whole = not found and whole_image_if_no_face
        if not found and not whole:
            return ImageResult([], rgb, detector=detector)
        crops = np.stack([crop_face(rgb, d.box, d.eyes if level else None) for d in found] if found else [crop_face(rgb)])
        scores = self.score_crops(crops, models)
        faces = [
            Face(d.box if d else None, {name: dict(zip(EMOTIONS, map(float, probs[i]))) for name, probs in scores.items()},
                 crops[i], scale, {name: self.is_uncertain(name, probs[i]) for name, probs in scores.items()},
                 confidence=d.score if d else None,
                 levelled_by=eye_angle(d.eyes) if d and d.eyes and level else None)
            for i, d in enumerate(found or [None])
        ]
        return ImageResult(faces, rgb, whole_image=whole, detector=detector)
