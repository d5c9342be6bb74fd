import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from fer.evaluation import plot_confusion_matrix
from fer.labels import EMOTIONS
from fer.metrics import EvaluationResult, compute_metrics


def test_metrics_match_scikit_learn_on_known_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 7, 300))
    r = compute_metrics(y_true, y_pred)
    assert r.accuracy == accuracy_score(y_true, y_pred)
    assert np.isclose(r.macro_f1, f1_score(y_true, y_pred, average="macro"))
    p, rec, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(7))
    for i, e in enumerate(EMOTIONS):
        assert np.isclose(r.per_class[e].precision, p[i])
        assert np.isclose(r.per_class[e].recall, rec[i])
        assert np.isclose(r.per_class[e].f1, f[i])
        assert r.per_class[e].support == s[i]
    assert r.confusion_matrix == confusion_matrix(y_true, y_pred).tolist()
    assert r.n == 300 and r.labels == list(EMOTIONS)


def test_hand_computed_case():
    r = compute_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert r.accuracy == 0.75
    assert r.per_class["angry"].recall == 0.5
    assert np.isclose(r.per_class["disgust"].precision, 2 / 3)
    assert r.per_class["fear"].support == 0


def test_json_round_trip_and_report(tmp_path):
    r = compute_metrics(np.array([0, 3, 3, 6]), np.array([0, 3, 6, 6]))
    d = json.loads(r.to_json())
    assert set(d) == {"accuracy", "macro_f1", "n", "labels", "per_class", "confusion_matrix", "split"}
    assert EvaluationResult.from_dict(d) == r
    assert "happy" in r.report() and "confusion matrix" in r.report()
    plot_confusion_matrix(r, tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_the_accuracy_interval_is_wilsons():
    from statistics import NormalDist

    from fer.metrics import wilson_interval

    # A textbook value (Agresti & Coull, 1998; Newcombe, 1998): 81 of 263 at 95% -> 0.2553-0.3662.
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    # Its definition: at either end, the observed accuracy is exactly z standard errors of that end away.
    z = NormalDist().inv_cdf(0.975)
    for correct, n in [(2452, 3589), (1, 50), (49, 50)]:
        p = correct / n
        for end in wilson_interval(correct, n):
            assert abs(p - end) / np.sqrt(end * (1 - end) / n) == pytest.approx(z, rel=1e-9)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0  # never outside [0, 1]
    narrow, wide = wilson_interval(2452, 3589, 0.90), wilson_interval(2452, 3589, 0.99)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_a_result_gives_the_interval_of_its_own_accuracy():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 7, 400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, (y_true + 1) % 7)
    r = compute_metrics(y_true, y_pred)
    lo, hi = r.accuracy_interval()
    assert r.correct == int((y_true == y_pred).sum())
    assert lo < r.accuracy < hi and 0.08 < hi - lo < 0.10  # about +-4.5 points on 400 faces
    assert f"95% interval {lo:.4f}-{hi:.4f}" in r.report()


def test_mcnemar_counts_the_faces_only_one_model_gets_right_and_tests_them_exactly():
    from fer.metrics import PairedComparison

    first = np.array([1] * 50 + [1] * 10 + [0] * 2 + [0] * 30, bool)  # 50 both right, 10 only first, 2 only second
    second = np.array([1] * 50 + [0] * 10 + [1] * 2 + [0] * 30, bool)
    c = PairedComparison.of(first, second)
    assert (c.only_first, c.only_second) == (10, 2)
    assert c.p_value == pytest.approx(2 * (1 + 12 + 66) / 2 ** 12)  # 2 P(X <= 2), X ~ Binomial(12, 1/2)
    assert PairedComparison.of(second, first).p_value == pytest.approx(c.p_value)
    assert PairedComparison.of(first, first) == PairedComparison(0, 0, 1.0)  # same answers: nothing to tell apart
