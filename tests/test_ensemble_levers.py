"""scripts/ensemble_levers.py: member weights and class offsets, fitted on half the validation slice."""

import importlib.util

import numpy as np

from conftest import REPO
from fer.data import load_dataset
from fer.evaluation import score_calibrated

spec = importlib.util.spec_from_file_location("ensemble_levers", REPO / "scripts" / "ensemble_levers.py")
levers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(levers)


def one_hot_scores(predicted: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    scores = np.full((len(predicted), 7), (1 - confidence) / 6)
    scores[np.arange(len(predicted)), predicted] = confidence
    return scores


def test_the_simplex_grid_holds_every_weighting_that_sums_to_one():
    grid = levers.simplex(3)
    assert len(grid) == 66 and all(np.isclose(w.sum(), 1) for w in grid)
    assert any(np.allclose(w, [1, 0, 0]) for w in grid) and any(np.allclose(w, [0.5, 0.5, 0]) for w in grid)


def test_weights_go_to_the_member_that_is_right_and_ties_to_the_equal_mean():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 300)
    right, noise = one_hot_scores(labels), one_hot_scores(rng.integers(0, 7, 300), 0.99)
    weights = levers.fit_weights(np.stack([noise, right]), labels, log=False)
    assert weights[1] > weights[0]
    assert np.allclose(levers.fit_weights(np.stack([right, right]), labels, log=True), [0.5, 0.5])


def test_offsets_lift_an_under_predicted_class_to_the_floor():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 700)
    predicted = np.where((labels == 2) & (rng.random(700) < 0.7), 4, labels)  # fear taken for sad 70% of the time
    scores = one_hot_scores(predicted, 0.5)
    scores[labels == 2, 2] = 0.4  # ... though fear is a close second there
    scores /= scores.sum(1, keepdims=True)
    assert levers.recalls(scores.argmax(1), labels)[2] < 0.5
    offsets = levers.fit_offsets(scores, labels, floor=0.5)
    lifted = levers.recalls((np.log(scores) + offsets).argmax(1), labels)
    assert offsets[2] > offsets[4] and lifted.min() >= 0.5


def test_the_table_has_every_lever_for_every_model_and_scores_as_shipped(app_zoo, synthetic_folders, capsys):
    levers.main(["--data", str(synthetic_folders), "--zoo-dir", str(app_zoo), "--repeats", "2"])
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [(r[0][2:], r[1]) for r in rows] == [
        ("member weights (probabilities)", "ensemble"), ("member weights (log-probabilities)", "ensemble"),
        *[("class offsets (recall floor 0.5)", m) for m in ("alpha", "beta", "ensemble")]]
    val = load_dataset(synthetic_folders).val
    accuracy = (score_calibrated("alpha", val.images, app_zoo).calibrated.argmax(1) == val.labels).mean()
    assert f"alpha {accuracy:.4f}" in out
