"""scripts/submission_size.py: what a submission's commits add, as this workplace counts it."""

import os
import subprocess
import sys

import numpy as np

from conftest import REPO

SCRIPT = REPO / "scripts" / "submission_size.py"


def _git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()


def _size(repo, base, *limits):
    return subprocess.run([sys.executable, str(SCRIPT), base, *limits], cwd=repo, capture_output=True, text=True)


def test_a_replaced_binary_counts_its_old_and_new_bytes_and_the_limit_refuses(tmp_path):
    rng = np.random.default_rng(0)
    _git(tmp_path, "init", "-q")
    (tmp_path / "notes.txt").write_text("start\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "start")
    base = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "model.keras").write_bytes(rng.bytes(1 << 20))
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "add weights")
    (tmp_path / "model.keras").write_bytes(rng.bytes(1 << 20))
    _git(tmp_path, "commit", "-qam", "replace weights")

    done = _size(tmp_path, base, "--diff-limit-mib", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    added, replaced = (float(line.split()[0]) for line in lines[:2])
    assert 1.1 < added < 1.5 and 2.2 < replaced < 3.0  # random bytes: base85 of each version, old and new
    assert lines[-1].startswith("diffs ") and "packed 2." in lines[-1]

    (tmp_path / "model.keras").write_bytes(rng.bytes(1 << 20))  # uncommitted: counted as if committed
    done = _size(tmp_path, base, "--diff-limit-mib", "4")
    assert done.returncode == 1 and "refused whole" in done.stderr
    assert "uncommitted" in done.stdout
