"""The demo's API through gradio_client, against app.py launched on a local port."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import PHOTOS, REPO, needs_photos
from fer.evaluation import compute_metrics
from fer.models import build_model, with_flip_tta
from fer.training import TrainConfig
from fer.zoo import export_entry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("app")
    run_dir = root / "runs"
    run_dir.mkdir()
    (run_dir / "history.csv").write_text("epoch,accuracy,loss\n0,0.5,1.0\n")
    result = compute_metrics(np.arange(7), np.arange(7))
    for seed, name in [(0, "alpha"), (1, "beta")]:
        keras.utils.set_random_seed(seed)
        config = TrainConfig(name=name, zoo_dir=str(root / "zoo"))
        export_entry(with_flip_tta(build_model("custom_cnn")), config, result, result, run_dir, train_seconds=1)
    return root / "zoo"


@pytest.fixture(scope="module")
def server(zoo, tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "FER_ZOO_DIR": str(zoo), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp_path_factory.mktemp("log") / "app.log", "w")
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, open(log.name).read()[-3000:]
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("app.py did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@needs_photos
def test_predict_and_compare_match_the_library(server, zoo):
    from gradio_client import Client, handle_file

    from fer.inference import Recognizer

    client = Client(server, verbose=False)
    photo = PHOTOS / "couple.jpg"
    faces = client.predict(handle_file(str(photo)), "alpha", api_name="/predict")
    expected = Recognizer.from_zoo(zoo).predict(photo, models="all")
    assert len(faces) == len(expected.faces) == 2
    for got, want in zip(faces, expected.faces):
        assert got["box"] == want.box.to_list()
        for emotion, p in want.scores["alpha"].items():
            assert got["scores"][emotion] == pytest.approx(p, abs=1e-5)
    compared = client.predict(handle_file(str(photo)), api_name="/compare")
    assert set(compared[0]["scores"]) == {"alpha", "beta", "ensemble"}
    assert compared[0]["scores"]["beta"]["happy"] == pytest.approx(expected.faces[0].scores["beta"]["happy"], abs=1e-5)


def test_bad_file_gets_an_error_and_the_server_still_answers(server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(Exception, match="Not a readable image|corrupt"):
        client.predict(handle_file(str(bad)), "alpha", api_name="/predict")
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(blank)
    assert client.predict(handle_file(str(blank)), "alpha", api_name="/predict") == []
