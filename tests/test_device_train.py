"""The GPU trainer (scripts/device_train.py, fer.device*) on this CPU: its augmentation, and a whole run
pack -> train (stopped by its time budget) -> resume -> shards -> reassemble -> a TensorFlow model.

The device commands run as the device runs them: in their own process, Keras on JAX, with TensorFlow,
OpenCV and scikit-learn made unimportable (the device has no TensorFlow; the trainer must need none).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

jax = pytest.importorskip("jax")
jnp = jax.numpy

from fer.augment import AugmentConfig  # noqa: E402
from fer.device_augment import augment_batch, mix_batch  # noqa: E402
from fer.labels import IMAGE_SIZE, NUM_CLASSES  # noqa: E402

SCRIPT = REPO / "scripts" / "device_train.py"
ONLY = {name: AugmentConfig(**{**AugmentConfig.off().to_dict(), name: value})
        for name, value in [("flip", True), ("shift", 0.1), ("brightness", 0.2), ("contrast", 0.2)]}
AS_ON_THE_DEVICE = """
import runpy, sys
class NotOnTheDevice:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "cv2", "sklearn"):
            raise ImportError(name + " is not on the device")
sys.meta_path.insert(0, NotOnTheDevice())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def augment(seed: int, x: np.ndarray, config: AugmentConfig, erasing: float = 0.0) -> np.ndarray:
    """``augment_batch`` compiled, as in the training step (op-by-op it compiles each operation)."""
    return np.asarray(jax.jit(lambda key, faces: augment_batch(key, faces, config, erasing))(jax.random.key(seed), x))


def faces(n: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)


def square(n: int = 32) -> np.ndarray:
    """Dark faces with a bright 8x8 square in the middle."""
    x = np.full((n, IMAGE_SIZE, IMAGE_SIZE), 20, np.uint8)
    x[:, 20:28, 20:28] = 230
    return x


def centroid(x: np.ndarray) -> np.ndarray:
    """Row and column of the centre of the bright pixels of each face, (N, 2)."""
    weight = np.clip(np.asarray(x) - 20, 0, None)
    rows, cols = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    total = weight.sum(axis=(1, 2))
    return np.stack([(weight * rows).sum(axis=(1, 2)) / total, (weight * cols).sum(axis=(1, 2)) / total], 1)


def test_augmentation_off_returns_the_faces_as_floats():
    x = faces()
    out = augment(0, x, AugmentConfig.off())
    assert out.dtype == np.float32 and np.array_equal(out, x.astype(np.float32))


def test_flip_mirrors_some_faces_and_leaves_the_others():
    x = faces(64)
    out = augment(1, x, ONLY["flip"])
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2))
    kept = np.all(out == x, axis=(1, 2))
    assert np.all(mirrored | kept)
    assert 10 < mirrored.sum() < 54


def test_shift_moves_the_pixels_by_at_most_a_tenth_of_the_side():
    x = square(64)
    out = augment(2, x, ONLY["shift"])
    moved = np.abs(centroid(out) - centroid(x))
    assert moved.max() <= 0.1 * IMAGE_SIZE + 0.5
    assert (moved.max(axis=1) > 1).mean() > 0.5
    assert np.allclose(out.sum(axis=(1, 2)), x.astype(np.float64).sum(axis=(1, 2)), rtol=0.02)  # moved, not lost


def test_rotation_and_zoom_keep_the_square_in_the_middle():
    x = square(32)
    config = AugmentConfig(**{**AugmentConfig.off().to_dict(), "rotation": 10.0, "zoom": 0.1})
    out = augment(3, x, config)
    assert np.abs(centroid(out) - centroid(x)).max() < 0.5  # about the centre
    assert np.abs(out - x).max(axis=(1, 2)).min() > 1  # but every face changed


def test_brightness_shifts_each_face_by_one_amount():
    x = np.full((64, IMAGE_SIZE, IMAGE_SIZE), 128, np.uint8)
    out = augment(4, x, ONLY["brightness"])
    delta = out - 128
    assert np.allclose(delta, delta[:, :1, :1], atol=1e-3)
    assert np.abs(delta).max() <= 0.2 * 255 + 1e-3 and np.abs(delta).max() > 0.1 * 255


def test_contrast_scales_the_distance_from_the_mean():
    x = np.tile(np.linspace(78, 178, IMAGE_SIZE, dtype=np.float32), (16, IMAGE_SIZE, 1)).round().astype(np.uint8)
    out = augment(5, x, ONLY["contrast"])
    mean = x.mean(axis=(1, 2), keepdims=True)
    factor = (out - mean)[:, 0, -1] / (x - mean)[:, 0, -1]
    assert np.allclose(out.mean(axis=(1, 2)), mean[:, 0, 0], atol=1e-2)
    assert np.all((factor >= 0.8 - 1e-4) & (factor <= 1.2 + 1e-4)) and factor.std() > 0.02


def test_erasing_zeroes_one_rectangle():
    x = np.full((32, IMAGE_SIZE, IMAGE_SIZE), 200, np.uint8)
    out = augment(6, x, AugmentConfig.off(), erasing=1.0)
    for face in out:
        rows, cols = np.nonzero(face == 0)
        assert set(np.unique(face)) == {0.0, 200.0}
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(rows) == height * width  # a filled rectangle
        assert 0.01 <= len(rows) / face.size <= 0.4


def test_everything_on_keeps_shape_and_range_and_is_deterministic_per_key():
    x = faces(64)
    everything = jax.jit(lambda key, faces: augment_batch(key, faces, AugmentConfig(), erasing=0.5))
    out = np.asarray(everything(jax.random.key(7), x))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert np.abs(out - x).mean() > 10
    assert np.array_equal(out, np.asarray(everything(jax.random.key(7), x)))
    assert not np.array_equal(out, np.asarray(everything(jax.random.key(8), x)))


def test_mixup_blends_faces_and_targets_alike():
    x = faces(16).astype(np.float32)
    targets = jax.nn.one_hot(np.arange(16) % NUM_CLASSES, NUM_CLASSES)
    mixed, mixed_targets = jax.jit(lambda key, x, t: mix_batch(key, x, t, 0.4))(jax.random.key(9), x, targets)
    assert np.allclose(np.asarray(mixed_targets).sum(axis=1), 1, atol=1e-5)
    assert mixed.shape == x.shape and np.asarray(mixed).min() >= 0 and np.asarray(mixed).max() <= 255
    assert not np.allclose(mixed, x)


def load_script():
    spec = importlib.util.spec_from_file_location("device_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_on_device(tmp, *args: str, script=SCRIPT) -> str:
    """``scripts/device_train.py ARGS`` (or another ``script``) as on the device (JAX, no TensorFlow); returns
    its output."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "OUT": str(tmp / "out"),
           "JAX_COMPILATION_CACHE_DIR": str(tmp / "jax-cache"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", AS_ON_THE_DEVICE, str(script), *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def report(folder) -> dict:
    return json.loads((folder / "report.json").read_text())


TRAIN = ["train", "--pack-dir", "pack", "--epochs", "3", "--batch-size", "32", "--lr", "3e-3", "--output", "runs"]


@pytest.fixture(scope="module")
def device_run(synthetic_folders, tmp_path_factory):
    """A pack of the synthetic faces, a 3-epoch run stopped after one epoch by its time budget (the first
    report kept), then resumed to the end; and the same run uninterrupted."""
    tmp = tmp_path_factory.mktemp("device")
    with pytest.MonkeyPatch.context() as mp:  # the shipped zoo's weights are over the budget: a real call sets
        mp.setattr("fer.device_host.TRAVEL_BUDGET", 2**40)  # them aside first (test_zoo_weights_go_aside_and_back)
        assert load_script().main(["pack", "--data", str(synthetic_folders), "--pack-dir", str(tmp / "pack"),
                                   "--no-wheels"]) == 0
    first = run_on_device(tmp, *TRAIN, "--time-budget", "0")
    stopped = report(tmp / "out")
    resumed = run_on_device(tmp, *TRAIN, "--resume", "--save-every", "0")
    straight = run_on_device(tmp, *TRAIN, "--name", "straight", "--time-budget", "600", "--save-every", "600")
    (tmp / "out").rename(tmp / "fetched")  # the last command's $OUT, as fetched: the straight run
    return {"tmp": tmp, "first": first, "stopped": stopped, "resumed": resumed, "straight": straight}


def test_the_time_budget_stops_after_an_epoch_and_resume_continues_from_it(device_run):
    assert device_run["stopped"]["epochs_done"] == 1
    assert "Stopping after epoch 1 of 3" in device_run["first"]
    assert "Resuming runs/custom_cnn at epoch 2 of 3" in device_run["resumed"]
    assert "epoch 1/3" not in device_run["resumed"] and "epoch 3/3" in device_run["resumed"]


def test_the_run_is_saved_when_due_and_when_the_command_ends(device_run):
    def saved(output):
        return [line.split(" at epoch ")[1] for line in output.splitlines() if "Saved runs/" in line]

    assert saved(device_run["first"]) == ["1"]  # stopped by its budget
    assert saved(device_run["resumed"]) == ["2", "3"]  # --save-every 0: every epoch
    assert saved(device_run["straight"]) == ["3"]  # not due before the end


def test_a_resumed_run_is_the_uninterrupted_run(device_run):
    resumed_checkpoint = np.load(device_run["tmp"] / "runs" / "custom_cnn" / "checkpoint.npz")
    straight_checkpoint = np.load(device_run["tmp"] / "runs" / "straight" / "checkpoint.npz")
    resumed = json.loads(str(resumed_checkpoint["report"]))
    straight = json.loads(str(straight_checkpoint["report"]))
    assert [r["epoch"] for r in resumed["history"]] == [0, 1, 2]
    for a, b in zip(resumed["history"], straight["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["val_accuracy"] == b["val_accuracy"]
    assert resumed["history"][0] == device_run["stopped"]["history"][0]
    assert np.allclose(resumed_checkpoint["trainable_0"], straight_checkpoint["trainable_0"], atol=1e-5)


def test_the_run_learns_and_reports_device_batch_and_precision(device_run):
    run = report(device_run["tmp"] / "fetched")
    assert run["best_val_accuracy"] > 0.4  # chance is 1/7: the network tells the classes apart
    assert (run["device"], run["precision"], run["train_config"]["batch_size"]) == ("cpu", "float32", 32)
    assert run["faces_per_second"] > 0 and run["epochs_done"] == 3
    assert sorted(run["shards"]) == ["weights-00.npz"]


def test_reassembled_weights_score_the_device_accuracy_in_tensorflow(device_run, synthetic_folders):
    import keras

    from fer.data import load_dataset
    from fer.evaluation import evaluate_model
    from fer.training import TrainConfig, read_history

    tmp = device_run["tmp"]
    assert load_script().main(["reassemble", str(tmp / "fetched"), "--output", str(tmp / "here")]) == 0
    run_dir = tmp / "here" / "straight"
    network = keras.saving.load_model(run_dir / "best.keras", compile=False)
    assert keras.backend.backend() == "tensorflow"
    val = load_dataset(synthetic_folders, val_fraction=0.1, seed=0).val
    device_accuracy = report(tmp / "fetched")["best_val_accuracy"]
    assert abs(evaluate_model(network, val).accuracy - device_accuracy) <= 0.001
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert (config.epochs, config.batch_size, config.data) == (3, 32, str(synthetic_folders))
    rows = read_history(run_dir / "history.csv")
    assert list(rows[0]) == ["epoch", "accuracy", "epoch_seconds", "loss", "val_accuracy", "val_loss"]
    assert len(rows) == 3 and (run_dir / "hardware.txt").read_text().startswith("a ")


def test_an_exported_device_run_says_where_and_how_it_trained_and_how_to_redo_it(device_run, synthetic_folders):
    from fer.device_host import reassemble
    from fer.recipe import run
    from fer.training import TrainConfig

    tmp = device_run["tmp"]
    reassemble(tmp / "fetched", output=str(tmp / "export-runs"))
    entry = run(TrainConfig(name="straight", output=str(tmp / "export-runs"), data=str(synthetic_folders),
                            zoo_dir=str(tmp / "export-zoo"), tta="none"),
                resume=True, explicit=frozenset({"data", "zoo_dir", "tta"}))
    card = (entry / "README.md").read_text()
    metrics = json.loads((entry / "metrics.json").read_text())
    assert metrics["device_run"]["hardware"].startswith("a ") and metrics["device_run"]["precision"] == "float32"
    assert "Trained on the GPU machine" in card and "| erasing | `--erasing` |" in card
    device_command = next(line for line in card.splitlines() if line.startswith("python3 scripts/device_train.py train"))
    assert "--arch custom_cnn" in device_command and "--epochs 3" in device_command
    assert "--batch-size 32" in device_command and "--fit-epochs" not in device_command
    assert "--tta" not in device_command  # chosen at export, by its command
    assert "python train.py --arch custom_cnn --output runs --name straight --resume --data PATH/TO/fer2013 --tta none" in card
    assert "python train.py --arch custom_cnn --data" not in card  # no host command that would train otherwise


def test_reassembly_refuses_weights_that_do_not_score_what_the_device_said(device_run):
    from fer.device_files import DeviceRunError
    from fer.device_host import reassemble

    tmp = device_run["tmp"]
    tampered = tmp / "tampered"
    tampered.mkdir()
    for f in (tmp / "fetched").iterdir():
        (tampered / f.name).write_bytes(f.read_bytes())
    run = report(tampered)
    run["best_val_accuracy"] -= 0.05
    (tampered / "report.json").write_text(json.dumps(run))
    with pytest.raises(DeviceRunError, match="more than 0.001 apart"):
        reassemble(tampered, output=str(tmp / "refused"))
    assert not (tmp / "refused").exists()


def test_an_unfinished_run_is_reassembled_only_when_asked(device_run, tmp_path):
    from fer.device_files import DeviceRunError
    from fer.device_host import reassemble

    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "report.json").write_text(json.dumps(device_run["stopped"]))
    with pytest.raises(DeviceRunError, match="has done 1 of 3 epochs"):
        reassemble(stopped, output=str(tmp_path / "runs"))


LEARNING_RATES = """
import json, sys
import numpy as np
from fer.device import DeviceTrainer, learning_rate_index
from fer.device_files import DeviceConfig, read_pack
from fer.training import TrainConfig

config = TrainConfig(batch_size=32, epochs=4, learning_rate=1e-2, warmup_epochs=1)
trainer = DeviceTrainer(config, DeviceConfig(), read_pack(__import__("pathlib").Path("pack")))
state, index = trainer.initial_state(), learning_rate_index(trainer.optimizer)
images, labels, indices, cw = trainer.train_data
order, used = trainer._order(trainer.key, indices), []
parts, totals = state.parts(), np.zeros(2, np.float32)
for rates in (trainer.epoch_rates(1, 3), np.zeros(trainer.steps, np.float32)):
    before = np.asarray(parts[0][0]).copy()
    for i in range(trainer.steps):
        parts, totals = trainer._step(parts, totals, images, labels, order, np.int32(i), cw, trainer.key, rates)
        used.append(float(parts[2][index]))
    print(json.dumps({"changed": float(np.abs(np.asarray(parts[0][0]) - before).max())}))
print(json.dumps({"steps": trainer.steps, "used": used}))
"""


def test_each_step_trains_at_the_rate_of_train_pys_schedule_as_planned(device_run):
    """The step sets the optimizer's learning rate from the plan it is given, and the update follows it."""
    from fer.training import TrainConfig, learning_rate_schedule

    tmp = device_run["tmp"]
    (tmp / "rates.py").write_text(LEARNING_RATES)
    output = run_on_device(tmp, script=tmp / "rates.py")
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    trained, frozen, rates = lines
    steps = rates["steps"]
    schedule = learning_rate_schedule(TrainConfig(epochs=3, learning_rate=1e-2, warmup_epochs=1), steps)
    expected = [float(schedule(step)) for step in range(steps, 2 * steps)]  # epoch 1 of a 3-epoch plan
    assert rates["used"][:steps] == pytest.approx(expected, rel=1e-5)
    assert expected[0] > expected[-1]  # the cosine is decaying in that epoch: the plan shows
    assert rates["used"][steps:] == [0.0] * steps
    assert trained["changed"] > 0 and frozen["changed"] == 0  # at rate 0 AdamW leaves the weights as they are


@pytest.mark.parametrize("done, left, each, planned", [(1, 100.0, 10.0, 11), (5, 1000.0, 10.0, 40),
                                                       (5, 5.0, 10.0, 5), (3, 0.0, 1.0, 3)])
def test_fitted_epochs_plan_what_fits_never_more_than_asked_nor_fewer_than_done(done, left, each, planned):
    from fer.device import fitted_epochs

    assert fitted_epochs(done, 40, left, each) == planned


def test_a_run_fitted_to_its_time_budget_finishes_its_schedule_inside_it(device_run):
    tmp = device_run["tmp"]
    output = run_on_device(tmp, "train", "--pack-dir", "pack", "--epochs", "1000", "--batch-size", "32",
                           "--output", "runs", "--name", "fitted", "--out", "fitted-out", "--fit-epochs",
                           "--time-budget", "15")
    run = report(tmp / "fitted-out")
    planned = run["train_config"]["epochs"]
    # As many epochs as fit: one where a busy machine (two test processes on two cores) slows the first epoch.
    assert run["epochs_asked"] == 1000 and 1 <= planned < 1000
    assert run["epochs_done"] == planned and f"Finished all {planned} epochs" in output
    assert "Stopping after" not in output  # the plan ended it, not the budget's emergency stop
    # Its last epoch began with at least a mean epoch left, so it ends inside the budget plus that epoch.
    seconds = [row["epoch_seconds"] for row in run["history"]]
    assert sum(seconds) <= 15 + seconds[-1]


ZOO_SCRIPT = REPO / "scripts" / "device_zoo.sh"


def run_zoo_script(tmp, **env: str) -> subprocess.CompletedProcess:
    """scripts/device_zoo.sh in ``tmp`` with ``env``, its Python the device's (no TensorFlow, OpenCV or
    scikit-learn) and every run on the pack in ``tmp/pack``, a batch of 32."""
    (tmp / "as_on_the_device.py").write_text(AS_ON_THE_DEVICE)
    python = tmp / "device-python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp / "as_on_the_device.py"}" "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "OUT": str(tmp / "zoo-out"), "PYTHON": str(python),
           "OPTIONS": "--pack-dir pack --batch-size 32 --lr 3e-3", "RUNS": "zoo-runs", **env}
    return subprocess.run(["bash", str(ZOO_SCRIPT)], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


def test_the_zoo_script_trains_each_architecture_into_its_own_out_folder(device_run):
    tmp = device_run["tmp"]
    done = run_zoo_script(tmp, ARCHS="custom_cnn", EPOCHS="2")
    assert done.returncode == 0, done.stderr[-3000:]
    run = report(tmp / "zoo-out" / "custom_cnn")
    assert (run["epochs_done"], run["train_config"]["epochs"], run["train_config"]["batch_size"]) == (2, 2, 32)
    assert "Finished all 2 epochs" in (tmp / "zoo-out" / "custom_cnn" / "train.log").read_text()
    share, left = (int(w) for w in done.stdout.split("custom_cnn: ")[1].split(" s left")[0].split(" s of the "))
    assert share == left > 400  # one run takes all of the budget (540 s by default)
    again = run_zoo_script(tmp, ARCHS="custom_cnn", EPOCHS="2")  # its checkpoint is there: continued, not redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming zoo-runs/custom_cnn at epoch 3 of 2" in again.stdout and "epoch 1/2" not in again.stdout
    late = run_zoo_script(tmp, ARCHS="custom_cnn vgg16_bn", EPOCHS="2", BUDGET="0")
    assert late.returncode == 0 and "vgg16_bn: not started" in late.stdout, late.stderr[-3000:]


@pytest.mark.parametrize("env, says", [({"ARCHS": ""}, "ARCHS is empty"),
                                       ({"ARCHS": "custom_cnn custom_cnn"}, "twice"),
                                       ({"ARCHS": "custom_cnn vgg16_bn", "EPOCHS": "3 4 5"}, "3 values for 2"),
                                       ({"ARCHS": "resnet50v2 vgg16_bn"}, "10 files and a call returns 8"),
                                       ({"OPTIONS": "--name x"}, "may not set --name"),
                                       ({"ARCHS": "custom_cnn vgg16_bn", "SHARES": "3"}, "1 values for 2"),
                                       ({"ARCHS": "custom_cnn", "SHARES": "0"}, "whole numbers above 0")])
def test_the_zoo_script_refuses_what_it_cannot_run(tmp_path, env, says):
    done = run_zoo_script(tmp_path, **env)
    assert done.returncode == 2 and says in done.stderr and not (tmp_path / "zoo-out").exists()


def test_the_travel_size_counts_the_working_tree_and_the_pack(tmp_path):
    from fer.device_host import TRAVEL_BUDGET, travel_size

    (tmp_path / "faces.bin").write_bytes(b"x" * 1000)
    size = travel_size(tmp_path)
    assert size.pack == 1000 and size.tree > 0 and size.total == size.pack + size.tree
    assert not any(path.startswith(".devicepack/") for path, _ in size.largest_tree_files)
    sizes = [n for _, n in size.largest_tree_files]
    assert sizes == sorted(sizes, reverse=True)
    weights = sum(p.stat().st_size for p in (REPO / "model_zoo").glob("*/model.keras"))
    assert size.tree - weights < TRAVEL_BUDGET / 4, "without the zoo's weights the code travels in a fraction"


def test_zoo_weights_go_aside_and_back_and_pack_says_how(synthetic_folders, tmp_path, monkeypatch):
    from fer.device_files import DeviceRunError
    from fer.device_host import ASIDE_DIR, zoo_weights_aside, zoo_weights_back

    for name, size in (("big", 3000), ("small", 10)):
        (tmp_path / "model_zoo" / name).mkdir(parents=True)
        (tmp_path / "model_zoo" / name / "model.keras").write_bytes(b"w" * size)
        (tmp_path / "model_zoo" / name / "metrics.json").write_text("{}")
    assert len(zoo_weights_aside(tmp_path)) == 2
    assert not list((tmp_path / "model_zoo").glob("*/model.keras"))
    assert (tmp_path / ASIDE_DIR / "big" / "model.keras").stat().st_size == 3000
    assert (tmp_path / "model_zoo" / "big" / "metrics.json").exists(), "only the weights move"
    assert len(zoo_weights_back(tmp_path)) == 2 and not list((tmp_path / ASIDE_DIR).glob("*/*"))
    assert (tmp_path / "model_zoo" / "big" / "model.keras").read_bytes() == b"w" * 3000
    assert ASIDE_DIR + "/" in (REPO / ".gitignore").read_text().split()

    import fer.device_host as host

    monkeypatch.setattr(host, "TRAVEL_BUDGET", 1)
    with pytest.raises(DeviceRunError, match="device_train.py aside"):
        host.pack(str(synthetic_folders), 0.1, 0, tmp_path / "pack", wheels=False)


def test_a_pack_over_the_travel_budget_is_refused_saying_what_to_move(synthetic_folders, tmp_path, monkeypatch):
    import fer.device_host
    from fer.device_files import DeviceRunError

    monkeypatch.setattr(fer.device_host, "TRAVEL_BUDGET", 2**20)
    with pytest.raises(DeviceRunError, match="Too big for a device call.*Largest files of the working tree"):
        fer.device_host.pack(str(synthetic_folders), 0.1, 0, tmp_path / "pack", wheels=False)


def test_a_device_benchmark_is_recorded_with_its_device_batch_and_precision(tmp_path):
    from fer.device_host import record_benchmark

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"models": {"custom_cnn": {}}}))
    bench = {"device": "NVIDIA H100 80GB HBM3", "precision": "mixed_bfloat16", "batch_size": 512,
             "architectures": {"custom_cnn": {"faces_per_second": 1.0}}}
    key = record_benchmark(bench, results)
    saved = json.loads(results.read_text())
    assert saved["models"] == {"custom_cnn": {}} and saved["device_training"][key] == bench
    assert key == "NVIDIA H100 80GB HBM3 mixed_bfloat16 batch 512"


def test_a_finished_runs_speed_is_recorded_beside_the_others_and_an_unfinished_one_refused(device_run, tmp_path):
    from fer.device_files import DeviceRunError
    from fer.device_host import record_benchmark

    results = tmp_path / "results.json"
    run = report(device_run["tmp"] / "fetched")
    bench = {"device": run["device"], "precision": run["precision"], "batch_size": 32,
             "architectures": {"vgg16_bn": {"faces_per_second": 1.0}}}
    key = record_benchmark(bench, results)
    assert record_benchmark(run, results) == key
    recorded = json.loads(results.read_text())["device_training"][key]["architectures"]
    assert recorded["vgg16_bn"] == {"faces_per_second": 1.0}, "the other architectures stay"
    assert recorded["custom_cnn"]["faces_per_second"] == run["faces_per_second"] > 0
    assert (recorded["custom_cnn"]["run"], recorded["custom_cnn"]["epochs"]) == ("straight", 3)
    with pytest.raises(DeviceRunError, match="1 of 3 epochs"):
        record_benchmark(device_run["stopped"], results)


@pytest.mark.parametrize("option, value", [("init_from", "model_zoo/custom_cnn"), ("teacher", "ensemble"),
                                           ("average_last", 5), ("soup", True)])
def test_options_the_device_trainer_does_not_implement_are_refused(option, value):
    import dataclasses

    from fer.device import check_supported
    from fer.device_files import DeviceConfig, DeviceRunError
    from fer.training import TrainConfig

    check_supported(TrainConfig(), DeviceConfig())
    with pytest.raises(DeviceRunError, match=f"--{option.replace('_', '-')} is not available on the device"):
        check_supported(dataclasses.replace(TrainConfig(), **{option: value}), DeviceConfig())
