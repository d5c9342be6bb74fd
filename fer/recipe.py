"""The whole recipe of a run: data -> fit -> test-time augmentation -> evaluate -> calibrate -> zoo entry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer import calibration
from fer.data import load_dataset
from fer.evaluation import evaluate_model, evaluate_scores, plot_history, predict_scores
from fer.export import export_entry, round_to_stored_precision
from fer.metrics import EvaluationResult
from fer.models import architecture, with_tta
from fer.training import TrainConfig, fit, prepare_run_dir, resumed_config, training_seconds
from fer.zoo import push_entry

log = logging.getLogger(__name__)


def choose_tta(network, val_split, mode: str, modes: tuple[str, ...]):
    """The network wrapped in test-time augmentation ``mode``; ``auto`` picks among ``modes`` the one with
    the best validation accuracy (fewer views win ties). Returns (model, mode, validation accuracy per mode)."""
    if mode != "auto":
        return with_tta(network, mode), mode, {}
    scores = {m: evaluate_model(with_tta(network, m), val_split).accuracy for m in modes}
    best = max(modes, key=lambda m: (scores[m], -modes.index(m)))
    log.info("Test-time augmentation on validation: %s -> %s",
             ", ".join(f"{m} {a:.4f}" for m, a in scores.items()), best)
    return with_tta(network, best), best, scores


def run(config: TrainConfig, resume: bool = False, explicit: frozenset[str] = frozenset(),
        push_to_hub: str | None = None) -> Path | None:
    """The whole recipe: load data, fit, plot, evaluate on test, export the zoo entry.

    With ``resume`` the saved config is used, except for the options named in ``explicit`` (given on this
    command line) that do not change training (``fer.training.AFTER_TRAINING``: data, zoo folder, TTA, export).
    """
    if resume and (config.run_dir / "config.json").exists():
        config = resumed_config(config.run_dir, config, set(explicit))
    config.validate()
    dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    log.info("Data:\n%s", dataset.summary())
    prepare_run_dir(config, resume)  # only once the options and the data are known to be good
    network = fit(config, dataset, resume=resume)
    if config.export:  # score what the zoo will store, not the float32 network it is rounded from
        log.info("Weights rounded to half precision (the zoo's storage): %d arrays", round_to_stored_precision(network))
    history_csv = config.run_dir / "history.csv"
    plot_history(history_csv, config.run_dir / "training_curves.png")
    evaluated = evaluate_network(network, config, dataset)
    if not config.export:
        return None
    return export_evaluated(network, config, evaluated, config.run_dir, training_seconds(history_csv),
                            push_to_hub=push_to_hub)


@dataclass
class Evaluated:
    """A network as the zoo would serve it (``model``, with the test-time views chosen on validation), its
    results on validation and test, and its calibration (fitted on validation; test only measured)."""

    model: object
    tta: str
    tta_scores: dict
    val: EvaluationResult
    test: EvaluationResult
    calibration: calibration.Calibration
    test_predictions: np.ndarray


def evaluate_network(network, config: TrainConfig, dataset) -> Evaluated:
    """The recipe after training, up to the export: test-time views, evaluation, calibration."""
    model, tta_mode, tta_scores = choose_tta(network, dataset.val, config.tta,
                                             architecture(config.architecture).tta_modes)
    val_probs, test_probs = predict_scores(model, dataset.val.images), predict_scores(model, dataset.test.images)
    val_result, test_result = evaluate_scores(val_probs, dataset.val), evaluate_scores(test_probs, dataset.test)
    log.info("Validation accuracy %.4f, macro F1 %.4f", val_result.accuracy, val_result.macro_f1)
    log.info("Test accuracy %.4f, macro F1 %.4f\n%s", test_result.accuracy, test_result.macro_f1,
             test_result.report())
    # Temperature and uncertain threshold from the validation slice; test is only measured.
    fitted = calibration.fit(val_probs, dataset.val.labels, test_probs, dataset.test.labels,
                             val_name=dataset.val.source_name, test_name=dataset.test.source_name)
    log.info("Temperature %.4f: validation ECE %.4f -> %.4f, test ECE %.4f -> %.4f; uncertain below %.2f",
             fitted.temperature, fitted.validation.raw.ece, fitted.validation.calibrated.ece, fitted.test.raw.ece,
             fitted.test.calibrated.ece, fitted.uncertain_threshold)
    return Evaluated(model, tta_mode, tta_scores, val_result, test_result, fitted, test_probs.argmax(axis=1))


def export_evaluated(network, config: TrainConfig, evaluated: Evaluated, run_dir: Path, train_seconds: float,
                     push_to_hub: str | None = None, extra: dict | None = None) -> Path:
    """``network`` (rounded to the zoo's storage already) as ``config``'s zoo entry, with what ``evaluated``
    measured, ``run_dir``'s history and curves, and ``extra`` in its metrics."""
    entry_dir = export_entry(network, config, evaluated.test, evaluated.val, run_dir=run_dir,
                             train_seconds=train_seconds, tta=evaluated.tta, tta_validation=evaluated.tta_scores,
                             calibration=evaluated.calibration, test_predictions=evaluated.test_predictions,
                             extra=extra)
    log.info("Exported zoo entry %s", entry_dir)
    if push_to_hub:
        info = push_entry(config.run_name, push_to_hub, zoo_dir=Path(config.zoo_dir))
        log.info("Pushed to %s at revision %s", push_to_hub, info.oid)
    return entry_dir
