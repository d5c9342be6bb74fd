"""python -m fer predict: the same pipeline as the app, from the command line."""

import json
import os
import subprocess
import sys

from conftest import PHOTOS, REPO, needs_photos


def _fer(*args, zoo):
    return subprocess.run([sys.executable, "-m", "fer", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "FER_ZOO_DIR": str(zoo)}, timeout=300)


@needs_photos
def test_predict_json_lists_faces_per_image_and_reports_bad_files(app_zoo, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = _fer("predict", str(PHOTOS / "couple.jpg"), str(bad), "--model", "all", "--json", zoo=app_zoo)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert [r["image"] for r in results] == [str(PHOTOS / "couple.jpg"), str(bad)]
    faces = results[0]["faces"]
    assert len(faces) == 2
    assert set(faces[0]["scores"]) == {"alpha", "beta", "ensemble"}
    assert len(faces[0]["box"]) == 4 and "error" not in results[0]
    assert "Not a readable image" in results[1]["error"] and results[1]["faces"] == []


def test_unknown_model_is_a_clear_error(app_zoo, tmp_path):
    out = _fer("predict", "x.jpg", "--model", "gpt", zoo=app_zoo)
    assert out.returncode == 2 and "alpha, beta, ensemble" in out.stderr
