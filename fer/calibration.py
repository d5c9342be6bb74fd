"""Calibrated probabilities: temperature scaling, how well scores match reality, and when to say 'uncertain'.

Deep networks trained with cross-entropy are often over-confident (or, with label smoothing and
test-time augmentation, under-confident): a 0.8 need not mean right 80% of the time. Temperature scaling
(Guo et al., 2017) fixes that with one number per model, fitted on the validation slice (the one at which
its scores there have the lowest ECE; see ``fit_temperature``): the models return probabilities (test-time
augmentation averages them), so their logs serve as logits and a calibrated score is ``softmax(log p / T)``.
It never changes which emotion is on top, so accuracy is unchanged. Fitting on the raw scores makes
re-fitting idempotent.

How well probabilities match outcomes, on N faces with true labels:

* ECE: expected calibration error, top label, NUM_BINS equal-width confidence bins: the mean over faces of
  |accuracy - mean confidence| of each face's bin;
* NLL: the mean negative log-likelihood of the true label;
* Brier: the squared distance between the probabilities and the one-hot label, summed over the seven
  classes and averaged over faces (0 is perfect, 2 the worst).

The 'uncertain' state: a face whose top calibrated probability is below the model's threshold. The
threshold is chosen on the validation slice by one rule (``choose_threshold``): the lowest one, on a grid of
THRESHOLD_STEP, at which the faces it accepts are at least TARGET_ACCURACY correct.

This module is numpy only: the read side (zoo, inference, the app) and the training side both use it.
The Keras form of the transform is ``fer.models.with_temperature``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

NUM_BINS = 15
"""Equal-width confidence bins of the expected calibration error (and the reliability diagram)."""

EPSILON = 1e-12
"""Probabilities are floored here before their log is taken (a float32 softmax can underflow to 0)."""

TEMPERATURE_RANGE = (0.05, 20.0)
"""Where the temperature is searched (for the lowest validation ECE)."""

TEMPERATURE_STEP = 0.01
"""The grid the temperature is searched on."""

TARGET_ACCURACY = 0.80
"""The uncertain threshold is the lowest at which the faces it accepts are at least this accurate."""

THRESHOLD_STEP = 0.01


def _as_probabilities(probs) -> np.ndarray:
    return np.asarray(probs, dtype=np.float64)


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(log p / T)`` of probabilities ``probs`` (N, C)."""
    logits = np.log(np.maximum(_as_probabilities(probs), EPSILON)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probs, labels) -> float:
    """Mean -log p(true label)."""
    p = _as_probabilities(probs)
    labels = np.asarray(labels)
    return float(-np.log(np.maximum(p[np.arange(len(labels)), labels], EPSILON)).mean())


def brier_score(probs, labels) -> float:
    """Multi-class Brier score: sum over classes of (p - one-hot)^2, mean over faces."""
    p = _as_probabilities(probs)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), np.asarray(labels)] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


@dataclass
class Bins:
    """Per confidence bin (NUM_BINS equal-width bins on (0, 1]): mean top probability, accuracy, faces."""

    confidence: list[float]
    accuracy: list[float]
    count: list[int]


def reliability_bins(probs, labels, num_bins: int = NUM_BINS) -> Bins:
    """The faces binned by their top probability (a bin holds (lower, upper]); empty bins have 0 and 0."""
    p = _as_probabilities(probs)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(labels)
    index = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    count = np.bincount(index, minlength=num_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.where(count > 0, np.bincount(index, confidence, num_bins) / np.maximum(count, 1), 0.0)
        accuracy = np.where(count > 0, np.bincount(index, correct, num_bins) / np.maximum(count, 1), 0.0)
    return Bins([round(float(c), 4) for c in mean_conf], [round(float(a), 4) for a in accuracy],
                [int(n) for n in count])


def expected_calibration_error(probs, labels, num_bins: int = NUM_BINS) -> float:
    """Top-label ECE over ``num_bins`` equal-width bins: sum over bins of (faces in bin / N) * |accuracy -
    mean confidence|."""
    p = _as_probabilities(probs)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(labels)
    index = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    gap = np.abs(np.bincount(index, correct, num_bins) - np.bincount(index, confidence, num_bins))
    return float(gap.sum() / len(confidence))


@dataclass
class ScoreQuality:
    """How well one set of probabilities matches the true labels."""

    accuracy: float
    ece: float
    nll: float
    brier: float
    bins: Bins

    @classmethod
    def measure(cls, probs, labels) -> "ScoreQuality":
        p = _as_probabilities(probs)
        return cls(accuracy=float((p.argmax(axis=1) == np.asarray(labels)).mean()),
                   ece=expected_calibration_error(p, labels), nll=negative_log_likelihood(p, labels),
                   brier=brier_score(p, labels), bins=reliability_bins(p, labels))

    @classmethod
    def from_dict(cls, d: dict) -> "ScoreQuality":
        return cls(**{**d, "bins": Bins(**d["bins"])})


def fit_temperature(probs, labels, bounds: tuple[float, float] = TEMPERATURE_RANGE,
                    step: float = TEMPERATURE_STEP) -> float:
    """The temperature, on a grid of ``step`` within ``bounds``, at which ``apply_temperature(probs, T)`` has the
    lowest ECE (among equals, the lowest NLL).

    ECE is what the calibration is judged by. Guo et al. minimise the NLL instead, which agrees when one
    temperature can straighten the whole reliability curve; with label smoothing and test-time augmentation
    it cannot (scores capped below 0.95 at the top, over-confident in the middle), and the NLL's optimum can
    then raise the ECE it is meant to lower (vgg16_bn's validation ECE: 0.028 raw, 0.032 at its NLL optimum).
    """
    p, labels = _as_probabilities(probs), np.asarray(labels)
    grid = np.round(np.arange(bounds[0], bounds[1] + step / 2, step), 6)
    ece = np.array([expected_calibration_error(apply_temperature(p, t), labels) for t in grid])
    tied = grid[ece <= ece.min() + 1e-12]
    if len(tied) == 1:
        return float(tied[0])
    return float(min(tied, key=lambda t: negative_log_likelihood(apply_temperature(p, t), labels)))


@dataclass
class Selective:
    """What an uncertain threshold does on a split: the share of faces at or above it (coverage) and
    their accuracy."""

    threshold: float
    coverage: float
    accuracy: float

    @classmethod
    def measure(cls, probs, labels, threshold: float) -> "Selective":
        p = _as_probabilities(probs)
        accepted = p.max(axis=1) >= threshold
        correct = p.argmax(axis=1) == np.asarray(labels)
        return cls(threshold, float(accepted.mean()), float(correct[accepted].mean()) if accepted.any() else 0.0)


def choose_threshold(probs, labels, target_accuracy: float = TARGET_ACCURACY, step: float = THRESHOLD_STEP) -> float:
    """The lowest threshold on a grid of ``step`` at which the faces whose top probability reaches it are at
    least ``target_accuracy`` correct (1.0 when no threshold gets there)."""
    for k in range(int(round(1 / step)) + 1):
        threshold = round(k * step, 6)
        selective = Selective.measure(probs, labels, threshold)
        if selective.coverage > 0 and selective.accuracy >= target_accuracy:
            return threshold
    return 1.0


@dataclass
class SplitCalibration:
    """Raw and calibrated score quality on one split, and the uncertain threshold's effect there."""

    split: str
    n: int
    raw: ScoreQuality
    calibrated: ScoreQuality
    selective: Selective | None = None

    @classmethod
    def measure(cls, raw_probs, calibrated_probs, labels, split: str, threshold: float | None) -> "SplitCalibration":
        return cls(split, int(len(labels)), ScoreQuality.measure(raw_probs, labels),
                   ScoreQuality.measure(calibrated_probs, labels),
                   Selective.measure(calibrated_probs, labels, threshold) if threshold is not None else None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SplitCalibration":
        return cls(d["split"], d["n"], ScoreQuality.from_dict(d["raw"]), ScoreQuality.from_dict(d["calibrated"]),
                   Selective(**d["selective"]) if d.get("selective") else None)


def calibration_digest(bound_to: str, temperature: float, uncertain_threshold: float) -> str:
    """The sha256 that seals a calibration to what it calibrates (a weights file's sha256, or an ensemble's
    members): changing the temperature, the threshold or the weights breaks it."""
    sealed = json.dumps({"bound_to": bound_to, "temperature": temperature,
                         "uncertain_threshold": uncertain_threshold}, sort_keys=True)
    return hashlib.sha256(sealed.encode()).hexdigest()


@dataclass
class Calibration:
    """A model's temperature and uncertain threshold, what they were fitted on, and the digest sealing them.

    ``validation`` is the split they were fitted on; ``test`` is measured for reports only, never used to
    fit. ``sha256`` is ``calibration_digest`` of the weights' sha256 (see fer.zoo.ZooEntry.verify).
    """

    temperature: float
    uncertain_threshold: float
    target_accuracy: float = TARGET_ACCURACY
    validation: SplitCalibration | None = None
    test: SplitCalibration | None = None
    sha256: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        d = dict(d)
        for split in ("validation", "test"):
            if d.get(split):
                d[split] = SplitCalibration.from_dict(d[split])
        return cls(**d)

    def sealed(self, bound_to: str) -> "Calibration":
        """This calibration with its digest bound to ``bound_to``."""
        return Calibration(**{**self.__dict__,
                              "sha256": calibration_digest(bound_to, self.temperature, self.uncertain_threshold)})

    def matches(self, bound_to: str) -> bool:
        return self.sha256 == calibration_digest(bound_to, self.temperature, self.uncertain_threshold)

    def is_uncertain(self, top_probability: float) -> bool:
        """Whether a face whose top calibrated score is ``top_probability`` is called uncertain."""
        return bool(top_probability < self.uncertain_threshold)


def record(temperature: float, val: tuple, test: tuple | None = None,
           target_accuracy: float = TARGET_ACCURACY) -> Calibration:
    """A calibration with ``temperature``: the uncertain threshold chosen on the calibrated validation
    probabilities, both splits measured (test for the record only). ``val`` and ``test`` are each
    (raw probabilities, calibrated probabilities, labels, split name). Not sealed yet (Calibration.sealed)."""
    threshold = choose_threshold(val[1], val[2], target_accuracy)
    validation = SplitCalibration.measure(*val, threshold=threshold)
    tested = SplitCalibration.measure(*test, threshold=threshold) if test is not None else None
    return Calibration(temperature, threshold, target_accuracy, validation, tested)


def fit(val_probs, val_labels, test_probs=None, test_labels=None, *, val_name: str = "val",
        test_name: str = "test", target_accuracy: float = TARGET_ACCURACY) -> Calibration:
    """Fit the temperature on a model's raw validation probabilities, then ``record`` it."""
    t = fit_temperature(val_probs, val_labels)
    test = None
    if test_probs is not None:
        test = (test_probs, apply_temperature(test_probs, t), test_labels, test_name)
    return record(t, (val_probs, apply_temperature(val_probs, t), val_labels, val_name), test, target_accuracy)
