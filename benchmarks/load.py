"""Load on the demo: concurrent gradio_client clients against app.py over loopback.

    python benchmarks/load.py [--clients 20] [--requests 10] [--photo PATH] [--out benchmarks/results.json]

Starts app.py on a free local port with the zoo in model_zoo/ (or uses --url), lets every client send
its requests to the /predict endpoint one after another, all clients at once, and reports how many
requests were answered, how many were turned away because the queue was full (FER_MAX_QUEUE), how
many failed otherwise, and the p50 / p95 latency of the answered ones.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(env: dict | None = None, log_path: Path | None = None, timeout: float = 180,
              args: list[str] | None = None) -> Iterator[tuple[str, int]]:
    """app.py (with command-line ``args``) on a free local port; yields (url, pid) once it accepts connections,
    stops it after."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), *(args or [])], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    tail = Path(log_path).read_text()[-3000:] if log_path else ""
                    raise RuntimeError(f"app.py did not start (exit code {proc.poll()}):\n{tail}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


def run_load(url: str, image: str | Path, clients: int = 20, requests: int = 10, timeout: float = 300,
             model: str | None = None) -> dict:
    """Every client sends ``requests`` /predict calls in turn, all clients at once (they start together).

    Returns counts of answered / busy (queue full) / failed requests, their latency percentiles, and
    the first few error messages. A request without an answer within ``timeout`` counts as failed.
    """
    from gradio_client import Client, handle_file
    from gradio_client.utils import QueueError

    start_line = threading.Barrier(clients)
    args = (handle_file(str(image)),) + ((model,) if model else ())

    def client_session(_) -> list[tuple[str, float, str]]:
        client = Client(url, verbose=False)
        start_line.wait()
        outcomes = []
        for _ in range(requests):
            start = time.perf_counter()
            try:
                client.submit(*args, api_name="/predict").result(timeout=timeout)
                outcomes.append(("answered", time.perf_counter() - start, ""))
            except QueueError as e:
                outcomes.append(("busy", time.perf_counter() - start, str(e)))
            except Exception as e:  # noqa: BLE001 - every other failure is counted and reported
                outcomes.append(("failed", time.perf_counter() - start, f"{type(e).__name__}: {e}"))
        client.close()
        return outcomes

    wall = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = [o for session in pool.map(client_session, range(clients)) for o in session]
    wall = time.perf_counter() - wall
    answered = [t * 1000 for kind, t, _ in outcomes if kind == "answered"]
    counts = {kind: sum(o[0] == kind for o in outcomes) for kind in ("answered", "busy", "failed")}
    return {
        "clients": clients, "requests_per_client": requests, **counts,
        "p50_ms": round(float(np.percentile(answered, 50)), 1) if answered else None,
        "p95_ms": round(float(np.percentile(answered, 95)), 1) if answered else None,
        "wall_s": round(wall, 1),
        "busy_messages": sorted({m for kind, _, m in outcomes if kind == "busy"})[:3],
        "errors": sorted({m for kind, _, m in outcomes if kind == "failed"})[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running app (default: start app.py on a free port)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--photo", default="examples/fer2013_test_1_happy_surprise.jpg")
    parser.add_argument("--out", default="benchmarks/results.json", help="merged into this JSON under 'load'")
    args = parser.parse_args()

    if args.url:
        result = run_load(args.url, args.photo, args.clients, args.requests)
    else:
        with serve_app() as (url, _):
            result = run_load(url, args.photo, args.clients, args.requests)
    result["photo"] = Path(args.photo).name
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**results, "load": result}, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
