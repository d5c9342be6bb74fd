"""scripts/tta_views.py: validation accuracy over wider sets of test-time views."""

import importlib.util

import numpy as np

from conftest import REPO
from fer.data import load_dataset
from fer.evaluation import predict_scores
from fer.models import with_tta
from fer.zoo import load_network

spec = importlib.util.spec_from_file_location("tta_views", REPO / "scripts" / "tta_views.py")
tta_views = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tta_views)


def test_the_table_scores_the_zoos_own_views_as_the_zoo_does_and_every_wider_set(app_zoo, synthetic_folders, capsys):
    tta_views.main(["--model", "alpha", "--zoo-dir", str(app_zoo), "--data", str(synthetic_folders)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines[1:]}
    assert [int(r[0]) for r in rows.values()] == [1, 2, 10, 18, 18, 50]

    val = load_dataset(synthetic_folders).val
    network = load_network("alpha", app_zoo)
    for name, mode in [("none", "none"), ("flip", "flip"), ("flip_shift (the zoo's)", "flip_shift")]:
        right = int((predict_scores(with_tta(network, mode), val.images).argmax(1) == val.labels).sum())
        assert int(rows[name][2].rstrip(" |")) == right, name
        assert float(rows[name][1]) == round(right / len(val.labels), 4)


def test_each_set_averages_its_views_of_the_face_and_of_its_mirror():
    labels = np.array([0, 1])
    scores = {(m, dy, dx): np.tile([[0.0, 1.0]], (2, 1)) for m in (0, 1) for dy in range(-4, 5) for dx in range(-4, 5)}
    scores[(0, 0, 0)] = np.array([[1.0, 0.0], [1.0, 0.0]])  # the face itself says class 0
    counts = {name: (count, right) for name, count, right in tta_views.table(scores, labels)}
    assert counts["none"] == (1, 1)  # class 0 for both: right on the first
    assert counts["flip"] == (2, 1)  # a tie breaks to class 0
    assert counts["flip_shift (the zoo's)"] == (10, 1)  # nine views of class 1 outvote one
