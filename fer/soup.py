"""Model soups: a zoo entry averaged with other weights of its architecture, kept only where validation says so.

    python -m fer zoo soup custom_cnn --with runs/custom_cnn_cycle3/best.keras --data ../shared/fer2013

Each warm-restart cycle of this zoo starts from the entry shipped before it, and both lie near one minimum: the
mean of the two (Wortsman et al., 2022, "model soups"; batch-norm statistics recomputed over the training faces,
as ``train.py --soup`` does for a cycle it trains) can sit nearer its centre than either. The soup is scored as the zoo serves
an entry (half precision, test-time views chosen on the entry's validation slice), and replaces the entry only
if its validation accuracy with those views beats the entry's: the rule every cycle is shipped by. The test
split is measured for the card, and decides nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fer.errors import ZooError

log = logging.getLogger(__name__)

KEPT_RECORDS = ("init", "weight_average", "device_run", "latency_ms", "latency_on")
"""What an entry's metrics.json says of how it was trained (and its cost per face, which a network of the same
architecture shares), carried over to its soup unchanged."""


def make_soup(network, other, train_images: np.ndarray):
    """The mean of two networks' weights (one architecture) as the zoo would store it: batch-norm statistics
    recomputed over ``train_images``, weights rounded to half precision."""
    from fer.export import round_to_stored_precision
    from fer.training import mean_weights_model

    mean = [(a.astype(np.float64) + b) / 2 for a, b in zip(network.get_weights(), other.get_weights())]
    soup = mean_weights_model(network.name, mean, train_images)
    log.info("Weights rounded to half precision (the zoo's storage): %d arrays", round_to_stored_precision(soup))
    return soup


def soup_entry(name: str, partner: str, data: str, zoo_dir: Path, out_dir: Path | None = None) -> tuple[Path | None, dict]:
    """The soup of zoo entry ``name`` and ``partner`` (a .keras file or zoo entry of the same architecture),
    exported as ``name`` to ``out_dir`` (default: ``zoo_dir``, replacing the entry) only if it beats the entry
    on validation. Returns (the entry written or None, the record of the comparison)."""
    from fer.data import load_dataset
    from fer.export import METRICS_FILE
    from fer.recipe import evaluate_network, export_evaluated
    from fer.training import HARDWARE_FILE, load_run_config, weights_fingerprint
    from fer.zoo import load_network

    entry = zoo_dir / name
    if not (entry / METRICS_FILE).is_file():
        raise ZooError(f"No zoo entry named {name!r} in {zoo_dir}: soup one of the entries `python -m fer zoo "
                       "list` shows.")
    metrics = json.loads((entry / METRICS_FILE).read_text())
    if "soup" in metrics:
        raise ZooError(f"{name} is a soup already (with {metrics['soup']['with']}); its card reproduces one soup: "
                       "train a cycle from it and soup that instead.")
    config = load_run_config(entry)
    shipped, other = load_network(str(entry)), load_network(partner)
    if other.name != shipped.name:
        raise ZooError(f"--with {partner} holds a {other.name} network, not {shipped.name}: a soup mixes weights "
                       "of one architecture.")
    dataset = load_dataset(data, val_fraction=config.val_fraction, seed=config.seed)
    log.info("Data:\n%s", dataset.summary())
    theirs = other.get_weights()
    soup = make_soup(shipped, other, dataset.train.images)
    # Named as the entry it replaces, with the views chosen as the entry's were (auto unless the run fixed them).
    config = dataclasses.replace(config, name=config.name if config.run_name == name else name, data=data,
                                 zoo_dir=str(out_dir or zoo_dir), export=True)
    evaluated = evaluate_network(soup, config, dataset)
    record = {"with": partner, "with_sha256": weights_fingerprint(theirs), "entry_sha256": metrics["sha256"],
              "validation_accuracy": {"entry": metrics["validation"]["accuracy"], "soup": evaluated.val.accuracy},
              "kept": evaluated.val.accuracy > metrics["validation"]["accuracy"]}
    log.info("Soup of %s and %s: validation %.4f against the entry's %.4f (each with its test-time views) -> %s",
             name, partner, evaluated.val.accuracy, metrics["validation"]["accuracy"],
             "kept" if record["kept"] else "not kept")
    if not record["kept"]:
        return None, record
    with tempfile.TemporaryDirectory() as tmp:  # the entry's training record, as a run folder holds it
        run_dir = Path(tmp)
        for file in ("history.csv", "training_curves.png"):
            if (entry / file).exists():
                shutil.copy(entry / file, run_dir / file)
        if "trained_on" in metrics:
            (run_dir / HARDWARE_FILE).write_text(metrics["trained_on"] + "\n")
        extra = {key: metrics[key] for key in KEPT_RECORDS if key in metrics}
        return export_evaluated(soup, config, evaluated, run_dir, metrics["train_seconds"],
                                extra={**extra, "soup": record}), record
