"""The demo's API through gradio_client, against app.py launched on a local port."""

import pytest

from conftest import PHOTOS, needs_photos


@needs_photos
def test_predict_and_compare_match_the_library(app_server, app_zoo):
    from gradio_client import Client, handle_file

    from fer.inference import Recognizer

    client = Client(app_server, verbose=False)
    photo = PHOTOS / "couple.jpg"
    faces = client.predict(handle_file(str(photo)), "alpha", api_name="/predict")
    expected = Recognizer.from_zoo(app_zoo).predict(photo, models="all")
    assert len(faces) == len(expected.faces) == 2
    for got, want in zip(faces, expected.faces):
        assert got["box"] == want.original_box
        for emotion, p in want.scores["alpha"].items():
            assert got["scores"][emotion] == pytest.approx(p, abs=1e-5)
    assert all(f["detector"] == "mtcnn" and f["confidence"] > 0.9 for f in faces)
    haar = client.predict(handle_file(str(photo)), "alpha", "haar", api_name="/predict")
    assert len(haar) == 2 and all(f["detector"] == "haar" and f["confidence"] is None for f in haar)
    compared = client.predict(handle_file(str(photo)), api_name="/compare")
    assert set(compared[0]["scores"]) == {"alpha", "beta", "ensemble"} and compared[0]["detector"] == "mtcnn"
    with pytest.raises(Exception, match="mtcnn, haar"):
        client.predict(handle_file(str(photo)), detector="yunet", api_name="/compare")
    assert compared[0]["scores"]["beta"]["happy"] == pytest.approx(expected.faces[0].scores["beta"]["happy"], abs=1e-5)


def test_bad_file_gets_an_error_and_the_server_still_answers(app_server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app_server, verbose=False)
    bad = tmp_path / "not_an_image.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(Exception, match="Not a readable image|corrupt"):
        client.predict(handle_file(str(bad)), "alpha", api_name="/predict")
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(blank)
    assert client.predict(handle_file(str(blank)), "alpha", api_name="/predict") == []
