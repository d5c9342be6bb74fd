"""Two flows, no circle: the read side (zoo reader -> inference -> render/explain -> app) never loads
the training side (data -> augment -> models -> training -> evaluation -> export)."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

TRAINING_SIDE = ["fer.data", "fer.augment", "fer.training", "fer.recipe", "fer.evaluation", "fer.export",
                 "fer.report", "fer.options"]


def _modules_loaded_by(statement: str, env: dict | None = None, prefix: str | tuple[str, ...] = "fer") -> set[str]:
    code = (f"import sys, json\n{statement}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefix!r}))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", ["import fer.inference", "import fer.zoo", "import fer.render",
                                       "import fer.explain", "import fer.video"])
def test_the_read_side_loads_no_training_module(statement):
    loaded = _modules_loaded_by(statement)
    assert not loaded & set(TRAINING_SIDE), f"{statement} loads {sorted(loaded & set(TRAINING_SIDE))}"


def test_the_app_loads_no_training_module(app_zoo):
    loaded = _modules_loaded_by("import app", {"FER_ZOO_DIR": str(app_zoo)})
    assert "fer.inference" in loaded, "the statement really imported the app"
    assert not loaded & set(TRAINING_SIDE), f"app loads {sorted(loaded & set(TRAINING_SIDE))}"


def test_the_checks_can_fail():
    """The training side does load what the read side must not, and TensorFlow (one process: TensorFlow's
    start-up is ten seconds)."""
    loaded = _modules_loaded_by("import fer.export", prefix=("fer", "tensorflow"))
    assert {"fer.training", "fer.data", "fer.augment", "tensorflow"} <= loaded


def test_the_zoo_report_reads_the_zoo_without_tensorflow():
    """The report is read from the entries' metrics.json: it needs no deep-learning framework (a second of
    start-up, not ten, and none of TensorFlow's start-up lines on stderr). test_the_checks_can_fail: the check
    sees TensorFlow where it is loaded."""
    assert not _modules_loaded_by("import fer.report", prefix=("tensorflow", "keras"))


def test_the_ensemble_is_defined_once():
    """Every module that averages models' scores goes through fer.ensemble.combine."""
    sources = {p.name: p.read_text() for p in (REPO / "fer").glob("*.py") if p.name != "ensemble.py"}
    assert not [name for name, text in sources.items() if "np.mean(" in text and "models" in text]
    assert not [name for name, text in sources.items() if "layers.Average" in text]
