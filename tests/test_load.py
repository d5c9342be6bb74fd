"""The demo under load: 20 concurrent clients x 10 requests each, and clear busy answers beyond its queue."""

import json

from conftest import REPO

PHOTO = REPO / "examples" / "fer2013_test_1_happy_surprise.jpg"
ARTIFACTS = REPO / "test-artifacts"


def test_twenty_clients_ten_requests_each_are_all_answered(app_server):
    from benchmarks.load import run_load

    result = run_load(app_server, PHOTO, clients=20, requests=10, timeout=300)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(result, indent=2))
    print(f"\n20 clients x 10 requests: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, {result['wall_s']} s")
    assert result["answered"] == 200, result
    assert result["busy"] == result["failed"] == 0


def test_beyond_the_queue_clients_get_a_busy_error_and_the_server_recovers(app_zoo, tmp_path):
    from gradio_client import Client, handle_file

    from benchmarks.load import run_load, serve_app

    env = {"FER_ZOO_DIR": str(app_zoo), "FER_MAX_QUEUE": "2", "FER_CONCURRENCY": "1"}
    with serve_app(env, tmp_path / "app.log") as (url, _):
        result = run_load(url, PHOTO, clients=20, requests=1, timeout=120)
        assert result["failed"] == 0, result  # no crash and no hang: every request got an answer
        assert result["answered"] + result["busy"] == 20
        assert result["answered"] >= 1 and result["busy"] >= 1, result
        assert result["busy_messages"] == ["Queue is full! Please try again."]
        faces = Client(url, verbose=False).predict(handle_file(str(PHOTO)), "alpha", api_name="/predict")
        assert len(faces) == 2  # once the burst is over the server answers as before
