"""python -m fer predict: the same pipeline as the app, from the command line."""

import json
import os
import subprocess
import sys

from conftest import PHOTOS, REPO, needs_photos


def _fer(*args, zoo, then_print: str | None = None):
    """``python -m fer ARGS`` on ``zoo``; ``then_print``, an expression, is printed on stdout after the command."""
    then = f"import sys\nfrom fer.cli import main\nstatus = main(sys.argv[1:])\nprint({then_print})\nsys.exit(status)"
    command = ["-m", "fer"] if then_print is None else ["-c", then]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "FER_ZOO_DIR": str(zoo)}, timeout=300)


@needs_photos
def test_predict_json_lists_faces_per_image_and_reports_bad_files(fer_command, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    status, out = fer_command("predict", str(PHOTOS / "couple.jpg"), str(bad), "--model", "all", "--json")
    assert status == 0, out.err[-2000:]
    results = json.loads(out.out)  # stdout is one JSON document
    assert [r["image"] for r in results] == [str(PHOTOS / "couple.jpg"), str(bad)]
    faces = results[0]["faces"]
    assert len(faces) == 2
    assert set(faces[0]["scores"]) == {"alpha", "beta", "ensemble"}
    assert len(faces[0]["box"]) == 4 and "error" not in results[0]
    assert "Not a readable image" in results[1]["error"] and results[1]["faces"] == []


TENSORFLOW_LOADED = "'tensorflow' in sys.modules"


def test_unknown_model_is_a_clear_error_before_tensorflow_loads(app_zoo, tmp_path):
    out = _fer("predict", "x.jpg", "--model", "gpt", zoo=app_zoo, then_print=TENSORFLOW_LOADED)
    assert out.returncode == 2 and "error: Unknown model 'gpt': choose from alpha, beta, ensemble or all." in out.stderr
    assert out.stdout.strip() == "False", "a misspelt name waited for TensorFlow (10 s) to be refused"
    video = _fer("video", "x.mp4", "--model", "gpt", zoo=app_zoo, then_print=TENSORFLOW_LOADED)  # the clip fails first
    assert video.returncode == 2 and video.stdout.strip() == "False"


def test_evaluate_refuses_a_missing_data_folder_before_tensorflow_loads(app_zoo):
    out = _fer("evaluate", "--model", "alpha", "--data", "/nonexistent", zoo=app_zoo, then_print=TENSORFLOW_LOADED)
    assert out.returncode == 2 and "error: /nonexistent does not exist" in out.stderr
    assert out.stdout.strip() == "False"


def test_unknown_detector_is_a_clear_error_listing_the_detectors(app_zoo):
    out = _fer("predict", "x.jpg", "--detector", "yunet", zoo=app_zoo, then_print=TENSORFLOW_LOADED)
    assert out.returncode == 2 and "error: Unknown face detector 'yunet': choose one of mtcnn, haar" in out.stderr
    assert out.stdout.strip() == "False"


@needs_photos
def test_only_the_models_asked_for_load(fer_command, monkeypatch):
    import fer.zoo

    loaded, real = [], fer.zoo.load_model
    monkeypatch.setattr(fer.zoo, "load_model", lambda name, *a, **k: loaded.append(name) or real(name, *a, **k))
    photo = str(PHOTOS / "couple.jpg")
    status, out = fer_command("predict", photo, "--model", "beta", "--json", "--detector", "haar")
    (item,) = json.loads(out.out)
    assert status == 0 and loaded == ["beta"] and [set(face["scores"]) for face in item["faces"]] == [{"beta"}, {"beta"}]
    loaded.clear()
    status, out = fer_command("predict", photo, "--model", "ensemble", "--json", "--detector", "haar")
    (item,) = json.loads(out.out)
    assert status == 0
    assert sorted(loaded) == ["alpha", "beta"] and set(item["faces"][0]["scores"]) == {"ensemble"}


@needs_photos
def test_the_detector_is_chosen_and_recorded(app_zoo):
    runs = {d: _fer("predict", str(PHOTOS / "couple.jpg"), "--model", "alpha", "--json", *args, zoo=app_zoo)
            for d, args in (("mtcnn", []), ("haar", ["--detector", "haar"]))}
    for detector, out in runs.items():
        assert out.returncode == 0, out.stderr[-2000:]
        (item,) = json.loads(out.stdout)
        assert item["detector"] == detector and len(item["faces"]) == 2
        confidences = [f["confidence"] for f in item["faces"]]
        assert all(c is None for c in confidences) if detector == "haar" else all(c > 0.9 for c in confidences)
    # MTCNN (TensorFlow models built on first use) adds nothing to the log of a Haar run.
    def log(out):
        return {line for line in out.stderr.splitlines() if "cuInit" not in line}  # the test env's TF log level
    assert log(runs["mtcnn"]) == log(runs["haar"]), runs["mtcnn"].stderr


@needs_photos
def test_predict_a_folder_to_csv_skips_bad_files_and_resumes(fer_command, tmp_path, caplog):
    import csv
    import logging
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("couple.jpg", "img1.jpg"):
        shutil.copy(PHOTOS / name, folder / name)
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "results.csv"
    caplog.set_level(logging.INFO, logger="fer")
    assert fer_command("predict", str(folder / "couple.jpg"), "--model", "alpha", "--out", str(out))[0] == 0
    assert fer_command("predict", str(folder), "--model", "all", "--out", str(out))[0] == 0
    assert f"Resuming {out}: 1 images done, 2 to go" in caplog.text
    with open(out) as f:
        rows = list(csv.DictReader(f))
    by_image = {}
    for row in rows:
        by_image.setdefault(row["image"].rsplit("/", 1)[-1], []).append(row)
    assert len(by_image["couple.jpg"]) == 2  # two faces, model alpha only: not redone
    assert len(by_image["img1.jpg"]) == 3  # one face, alpha + beta + ensemble
    assert "Not a readable image" in by_image["broken.png"][0]["error"]
    assert abs(sum(float(by_image["img1.jpg"][0][e]) for e in
                   ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")) - 1) < 1e-4
