"""Every user-facing failure is a FerError: the command lines exit with status 2 and end with one
``error: ...`` line that says what to do, never a traceback."""

import json
import subprocess
import sys

import pytest

from conftest import REPO
from fer.cli import main


def _one_line_error(code: int, stderr: str, expected: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, stderr


@pytest.mark.parametrize("args, expected", [
    (["evaluate", "--model", "custom_cnn", "--data", "/nonexistent/fer2013"], "does not exist"),
    (["evaluate", "--model", "gpt", "--data", "{data}"], "No model named 'gpt'"),
    (["predict", "x.jpg", "--model", "gpt"], "choose from alpha, beta, ensemble"),
    (["zoo", "push", "nothing", "--repo-id", "me/x"], "is not a zoo entry"),
    (["zoo", "report", "--zoo-dir-that-does-not-exist"], "unrecognized arguments"),
    (["zoo", "export-tflite", "gpt", "--data", "{data}"], "No model named 'gpt'"),
    (["zoo", "calibrate", "gpt", "--data", "{data}"], "No zoo entry named 'gpt': calibrate one of alpha, beta"),
    (["nonsense"], "invalid choice"),
])
def test_each_cli_path_fails_with_one_line(args, expected, app_zoo, synthetic_folders, monkeypatch, capsys):
    monkeypatch.setenv("FER_ZOO_DIR", str(app_zoo))
    args = [a.format(data=synthetic_folders) for a in args]
    try:
        code = main(args)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    _one_line_error(code, capsys.readouterr().err, expected)


def test_an_empty_zoo_report_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FER_ZOO_DIR", str(tmp_path))
    _one_line_error(main(["zoo", "report"]), capsys.readouterr().err, "The zoo is empty")


def test_python_dash_m_fer_exits_2_with_one_line(app_zoo):
    done = subprocess.run([sys.executable, "-m", "fer", "evaluate", "--model", "alpha", "--data", "/nonexistent"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    _one_line_error(done.returncode, done.stderr, "does not exist")


TRAIN_PY = ("import sys; sys.path.insert(0, {repo!r}); import train\n"
            "status = train.main(sys.argv[1:]); print('tensorflow' in sys.modules); sys.exit(status)")


def test_train_py_errors_are_one_line(synthetic_folders, tmp_path, monkeypatch, capsys):
    """Real processes (train.py's main exits 2 with one line, no traceback) for the mistakes refused before
    TensorFlow starts (a second, not ten); the others in-process, where the same ``main`` runs without paying for
    a TensorFlow start-up each."""
    import train

    def refused_before_tensorflow(*args: str, expected: str) -> None:
        done = subprocess.run([sys.executable, "-c", TRAIN_PY.format(repo=str(REPO)), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        _one_line_error(done.returncode, done.stderr, expected)
        assert done.stdout.split() == ["False"], "TensorFlow was started for a command refused without it"

    refused_before_tensorflow("--data", str(tmp_path / "none"), expected="does not exist")
    (tmp_path / "held" / "custom_cnn").mkdir(parents=True)
    (tmp_path / "held" / "custom_cnn" / "config.json").write_text(json.dumps({"epochs": 1}))
    refused_before_tensorflow("--data", str(synthetic_folders), "--output", str(tmp_path / "held"),
                              expected="pass --resume")

    def fails(*args) -> tuple[int, str]:
        try:
            code = train.main(list(args))
        except SystemExit as e:  # argparse's usage errors
            code = e.code
        return code, capsys.readouterr().err

    monkeypatch.chdir(tmp_path)
    _one_line_error(*fails("--arch", "alexnet"), "invalid choice: 'alexnet'")
    _one_line_error(*fails("--data", str(synthetic_folders), "--weights", "imagenet"),
                    "custom_cnn has no 'imagenet' weights")
    _one_line_error(*fails("--data", str(synthetic_folders), "--class-weight", '{"bored": 2}'),
                    "Unknown emotions in class weights: bored")
    assert not (tmp_path / "runs").exists(), "a run that never started leaves no folder behind"


def test_class_weights_that_do_not_parse_are_a_config_error():
    from fer.augment import class_weights
    from fer.errors import ConfigError

    with pytest.raises(ConfigError, match="JSON object"):
        class_weights([0, 1], "{oops")
