"""Shared fixtures: synthetic faces a model can really learn, written in the three data forms."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer.labels import EMOTIONS, IMAGE_SIZE, NUM_CLASSES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FER2013 = SHARED / "fer2013"
PHOTOS = SHARED / "photos"

needs_fer2013 = pytest.mark.skipif(not (FER2013 / "test").is_dir(),
                                   reason=f"FER-2013 not found at {FER2013} (CI provides ../shared)")
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"test photos not found at {PHOTOS}")


def synthetic_faces(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 48x48 images whose class is a bright bar at a class-specific height: easy to learn,
    impossible to guess (chance is 1/7)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    band = IMAGE_SIZE // NUM_CLASSES
    for label in range(NUM_CLASSES):
        for _ in range(n_per_class):
            img = rng.normal(90, 25, (IMAGE_SIZE, IMAGE_SIZE))
            top = label * band + 1
            img[top:top + band - 2, 6:-6] += 120
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def write_tree(root: Path, images: np.ndarray, labels: np.ndarray, names: dict[int, str] | None = None,
               prefix: str = "img") -> Path:
    """Write faces as JPEG files into root/<emotion>/."""
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / (names or {}).get(int(label), EMOTIONS[label])
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{prefix}_{i}.png"), img)
    return root


def write_csv(path: Path, rows: list[tuple[int, np.ndarray, str]]) -> Path:
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for label, img, usage in rows:
            f.write(f'{label},"{" ".join(map(str, img.ravel()))}",{usage}\n')
    return path


@pytest.fixture(scope="session")
def synthetic_folders(tmp_path_factory) -> Path:
    """A Kaggle-layout folder (train/ and test/) of synthetic faces."""
    root = tmp_path_factory.mktemp("synthetic")
    x, y = synthetic_faces(40, seed=1)
    write_tree(root / "train", x, y)
    x, y = synthetic_faces(10, seed=2)
    write_tree(root / "test", x, y)
    return root


APP_ZOO_TEMPERATURE = 0.25
"""The app zoo's ``alpha`` scores with this temperature (``beta`` has none): far from 1, so that a path that
skipped it would score differently."""

APP_ZOO_THRESHOLD = 0.9
"""``alpha``'s and the ensemble's uncertain threshold: the ensemble (the mean of a sharpened alpha and a
near-uniform beta, both untrained) stays below it, so the app shows its faces as uncertain."""


@pytest.fixture(scope="session")
def app_zoo(tmp_path_factory):
    """Two small untrained models exported as zoo entries (the app needs no trained weights to be tested):
    ``alpha`` calibrated (APP_ZOO_TEMPERATURE), ``beta`` not, the ensemble with an uncertain threshold."""
    import keras

    from fer.calibration import Calibration
    from fer.export import export_entry, record_calibration, record_ensemble_calibration
    from fer.metrics import compute_metrics
    from fer.models import build_model
    from fer.training import TrainConfig

    root = tmp_path_factory.mktemp("app")
    run_dir = root / "runs"
    run_dir.mkdir()
    (run_dir / "history.csv").write_text("epoch,accuracy,loss\n0,0.5,1.0\n")
    result = compute_metrics(np.arange(7), np.arange(7))
    for seed, name in [(0, "alpha"), (1, "beta")]:
        keras.utils.set_random_seed(seed)
        config = TrainConfig(name=name, zoo_dir=str(root / "zoo"))
        export_entry(build_model("custom_cnn"), config, result, result, run_dir, train_seconds=1, tta="flip")
    record_calibration(root / "zoo" / "alpha", Calibration(APP_ZOO_TEMPERATURE, APP_ZOO_THRESHOLD))
    record_ensemble_calibration(root / "zoo", Calibration(1.0, APP_ZOO_THRESHOLD))
    return root / "zoo"


@pytest.fixture
def fer_command(app_zoo, monkeypatch, capsys):
    """``python -m fer ARGS`` on the test zoo, in this process (python -m fer runs main() as this does, and no
    TensorFlow start-up is paid again): its exit status and what it printed."""
    from fer.cli import main

    monkeypatch.setenv("FER_ZOO_DIR", str(app_zoo))

    def run(*args: str):
        capsys.readouterr()
        status = main(list(args))
        return status, capsys.readouterr()
    return run


@pytest.fixture(scope="session")
def app_process(app_zoo, tmp_path_factory):
    """(url, pid) of ``app.py --mcp`` on a free local port, serving a zoo of two small untrained models to
    browsers, API clients and (tests/test_mcp.py) agents: one app start-up (TensorFlow, Gradio) for all three."""
    from benchmarks.load import serve_app

    with serve_app({"FER_ZOO_DIR": str(app_zoo)}, tmp_path_factory.mktemp("log") / "app.log",
                   args=["--mcp"]) as served:
        yield served


@pytest.fixture(scope="session")
def app_server(app_process) -> str:
    return app_process[0]


@pytest.fixture(scope="session")
def shipped_app_server(tmp_path_factory) -> str:
    """app.py serving the zoo this repository ships (model_zoo/), for screenshots of what users see."""
    from benchmarks.load import serve_app

    with serve_app({"FER_ZOO_DIR": str(REPO / "model_zoo")}, tmp_path_factory.mktemp("log") / "shipped_app.log") as (url, _):
        yield url
