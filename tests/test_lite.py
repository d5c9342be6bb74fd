"""TensorFlow Lite export: same scores as Keras, evaluated through the same contract, refused if accuracy moves."""

import json

import numpy as np
import pytest

from conftest import synthetic_faces


def test_export_keeps_scores_and_evaluate_reads_tflite(fer_command, synthetic_folders, tmp_path):
    from fer.lite import LiteModel
    from fer.zoo import load_model

    out = tmp_path / "alpha.tflite"
    status, printed = fer_command("zoo", "export-tflite", "alpha", "--data", str(synthetic_folders), "--out", str(out))
    assert status == 0, printed.err[-2000:]
    report = json.loads(printed.out)
    assert report["tflite_accuracy"] == report["keras_accuracy"] and report["validation_faces"] == 28

    faces = synthetic_faces(3, seed=5)[0][..., None].astype(np.float32)
    lite = load_model(str(out))
    assert isinstance(lite, LiteModel)
    np.testing.assert_allclose(lite(faces), load_model("alpha").predict(faces, verbose=0), atol=1e-5)

    results = {}
    for model in (str(out), "alpha"):
        status, printed = fer_command("evaluate", "--model", model, "--data", str(synthetic_folders), "--json")
        assert status == 0, printed.err[-2000:]
        results[model] = json.loads(printed.out)
    lite_result, keras_result = results[str(out)], results["alpha"]
    lite_calibration, keras_calibration = lite_result.pop("calibration"), keras_result.pop("calibration")
    assert lite_result == keras_result
    # The export is of the calibrated model: its scores, taken as they are, are alpha's calibrated ones.
    assert lite_calibration["fitted"] is False and keras_calibration["fitted"] is True
    for metric in ("accuracy", "ece", "nll", "brier"):
        assert lite_calibration["raw"][metric] == pytest.approx(keras_calibration["calibrated"][metric], abs=1e-5)


def test_an_export_that_moves_accuracy_is_refused_and_removed(fer_command, synthetic_folders, tmp_path, monkeypatch):
    import fer.lite

    monkeypatch.setattr(fer.lite, "MAX_ACCURACY_DROP", -1.0)  # any export now counts as moving accuracy
    out = tmp_path / "alpha.tflite"
    status, printed = fer_command("zoo", "export-tflite", "alpha", "--data", str(synthetic_folders), "--out", str(out))
    assert status == 2 and "not kept" in printed.err
    assert not out.exists()
