"""Cold start of the package and of the demo: what a fresh process pays before its first answer.

    python benchmarks/cold_start.py [--repo PATH] [--label TEXT] [--imports 3] [--starts 2]
                                    [--note TEXT] [--out benchmarks/results.json]

Measures, for the checkout at --repo (default: the one holding this script):
  - the wall time of ``python -c "import fer.inference"`` in a fresh process (after one untimed run,
    so that bytecode compilation and a cold disk cache are not counted);
  - the seconds from starting ``python app.py`` to the first answer of its /predict endpoint, polled
    with gradio_client, for the first photo in ``../shared/photos`` (skipped, with a message, if none).
Results are merged into --out under "cold_start" -> --label; every other key is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from anywhere: python benchmarks/cold_start.py (fer for describe_cpu)

from load import free_port  # noqa: E402 - benchmarks/load.py, beside this script

QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def summary(seconds: list[float]) -> dict:
    return {"median": round(statistics.median(seconds), 2), "values": [round(s, 2) for s in seconds]}


def time_import(repo: Path) -> float:
    """Wall seconds of ``python -c "import fer.inference"`` in a fresh process run in ``repo``."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", "import fer.inference"], cwd=repo, env={**os.environ, **QUIET_TF},
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        raise RuntimeError(f"import fer.inference failed in {repo}:\n{run.stderr[-3000:]}")
    return seconds


def time_first_answer(repo: Path, photo: Path, timeout: float = 600) -> float:
    """Seconds from starting ``repo``'s app.py to the first answer of /predict for ``photo``.

    The server runs in its own process group, which is terminated (killed if it lingers) afterwards.
    Raises RuntimeError, with the server's log, if it exits or does not connect within ``timeout``.
    """
    import httpx
    from gradio_client import Client, handle_file

    port = free_port()
    env = {**os.environ, **QUIET_TF, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=repo, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                try:
                    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.perf_counter() - start > timeout:
                        log.seek(0)
                        raise RuntimeError(f"app.py did not start (exit code {proc.poll()}):\n"
                                           f"{log.read()[-3000:]}") from None
                    time.sleep(0.2)
            client.predict(handle_file(str(photo)), api_name="/predict")
            seconds = time.perf_counter() - start
            client.close()
            return seconds
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """Terminate ``proc``'s whole process group; kill it if it has not exited after ``grace`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:  # already gone
        pass


def first_photo(repo: Path) -> Path | None:
    photos = sorted((repo.parent / "shared" / "photos").glob("*.jpg"))
    return photos[0] if photos else None


def describe_machine() -> str:
    """This machine in a few words, with the CPU described as the rest of the project does ("a 2-core CPU")."""
    from fer.training import describe_cpu

    return f"{describe_cpu()} ({platform.machine()}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure (default: this one)")
    parser.add_argument("--label", default="current", help="key of these results under 'cold_start'")
    parser.add_argument("--imports", type=int, default=3, help="timed runs of the import")
    parser.add_argument("--starts", type=int, default=2, help="timed starts of app.py")
    parser.add_argument("--note", default="", help="added to the note stored with the results")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    args = parser.parse_args()
    repo = args.repo.resolve()
    machine = describe_machine()

    time_import(repo)  # untimed: compiles bytecode and warms the disk cache
    imports = summary([time_import(repo) for _ in range(args.imports)])
    photo = first_photo(repo)
    if photo is None:
        print(f"No *.jpg in {repo.parent / 'shared' / 'photos'}: app start-up not measured.")
        answers = {"skipped": "no photo in ../shared/photos"}
    else:
        answers = {**summary([time_first_answer(repo, photo) for _ in range(args.starts)]), "photo": photo.name}
    note = (f"wall seconds of fresh processes in {repo}, after one untimed import; app: from process start "
            f"to the first /predict answer. {args.note}").strip()
    entry = {"import_fer_inference_s": imports, "app_first_answer_s": answers,
             "machine": machine, "note": note}

    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.setdefault("cold_start", {})[args.label] = entry
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{args.label} ({repo}) on {entry['machine']}:")
    print(f"  import fer.inference: median {imports['median']} s of {imports['values']}")
    if "median" in answers:
        print(f"  app.py to first /predict answer: median {answers['median']} s of {answers['values']}")
    print(f"Written to {args.out} under cold_start/{args.label}.")


if __name__ == "__main__":
    main()
