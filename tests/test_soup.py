"""python -m fer zoo soup: an entry averaged with other weights, kept only if validation accuracy rises."""

import json

import numpy as np
import pytest

from fer.metrics import compute_metrics

WEIGHT_AVERAGE = {"epochs": [2, 3], "validation_accuracy": {"best_epoch": 0.5, "average": 0.6}, "chosen": "average"}


def _zoo_with_entry(root, recorded_validation: float):
    """A zoo holding ``alpha`` (an untrained custom_cnn whose card records ``recorded_validation`` on validation and
    a weight average), and other weights of its architecture (``partner.keras``), as a warm restart's start."""
    import keras

    from fer.export import export_entry
    from fer.models import build_model
    from fer.training import TrainConfig

    run_dir = root / "runs"
    run_dir.mkdir(parents=True)
    (run_dir / "history.csv").write_text("epoch,accuracy,loss,epoch_seconds\n0,0.5,1.0,10\n1,0.6,0.9,10\n2,0.6,0.9,10\n")
    keras.utils.set_random_seed(1)
    partner = root / "partner.keras"
    build_model("custom_cnn").save(partner)
    keras.utils.set_random_seed(0)
    right = round(recorded_validation * 7)
    val = compute_metrics(np.arange(7), np.r_[np.arange(right), (np.arange(right, 7) + 1) % 7])
    test = compute_metrics(np.arange(7), np.arange(7))
    config = TrainConfig(name="alpha", zoo_dir=str(root / "zoo"), init_from=str(partner), epochs=3, average_last=2)
    export_entry(build_model("custom_cnn"), config, test, val, run_dir, train_seconds=30, tta="flip",
                 extra={"weight_average": WEIGHT_AVERAGE})
    return root / "zoo", partner


def test_a_soup_that_beats_the_entry_on_validation_replaces_it_with_its_record(fer_command, synthetic_folders,
                                                                                tmp_path):
    from fer.export import _stored
    from fer.training import weights_fingerprint
    from fer.zoo import list_entries, load_network

    zoo, partner = _zoo_with_entry(tmp_path, recorded_validation=0.0)  # any soup scores more
    before = json.loads((zoo / "alpha" / "metrics.json").read_text())
    ours, theirs = load_network(str(zoo / "alpha")).get_weights(), load_network(str(partner)).get_weights()
    status, out = fer_command("zoo", "soup", "alpha", "--with", str(partner), "--data", str(synthetic_folders),
                              "--zoo-dir", str(zoo), "--out", str(tmp_path / "souped"))
    assert status == 0, out.err[-2000:]
    record = json.loads(out.out)
    assert record["kept"] and record["validation_accuracy"]["entry"] == 0.0
    assert record["with_sha256"] == weights_fingerprint(theirs) and record["entry_sha256"] == before["sha256"]

    (entry,) = list_entries(tmp_path / "souped")
    metrics = entry.metrics
    assert metrics["soup"] == record and metrics["validation"]["accuracy"] == record["validation_accuracy"]["soup"]
    assert metrics["weight_average"] == WEIGHT_AVERAGE, "the entry's training record is the soup's"
    assert (metrics["epochs"], metrics["train_seconds"]) == (before["epochs"], before["train_seconds"]) == (3, 30)
    assert (metrics["latency_ms"], metrics["latency_on"]) == (before["latency_ms"], before["latency_on"])
    kernel = next(i for i, w in enumerate(ours) if w.ndim == 4)  # a convolution: nothing recomputed in it
    np.testing.assert_array_equal(load_network(str(entry.path)).get_weights()[kernel],
                                  _stored(((ours[kernel].astype(np.float64) + theirs[kernel]) / 2).astype(np.float32)))
    card = (entry.path / "README.md").read_text()
    assert f"python -m fer zoo soup alpha --with {partner} --data PATH/TO/fer2013" in card
    assert f"{record['validation_accuracy']['soup']:.4f} on validation with test-time views against 0.0000" in card
    assert (zoo / "alpha" / "metrics.json").read_text() == json.dumps(before, indent=2) + "\n", "--out: left alone"
    status, out = fer_command("zoo", "soup", "alpha", "--with", str(partner), "--data", str(synthetic_folders),
                              "--zoo-dir", str(tmp_path / "souped"))
    assert status == 2 and "alpha is a soup already" in out.err, "a second soup would drop the first from the card"


def test_a_soup_that_does_not_beat_the_entry_leaves_it_unchanged(fer_command, synthetic_folders, tmp_path):
    zoo, partner = _zoo_with_entry(tmp_path, recorded_validation=1.0)  # no soup scores more
    before = {p.name: p.read_bytes() for p in (zoo / "alpha").iterdir()}
    status, out = fer_command("zoo", "soup", "alpha", "--with", str(partner), "--data", str(synthetic_folders),
                              "--zoo-dir", str(zoo))
    assert status == 1 and "not kept, alpha is unchanged" in out.err
    assert not json.loads(out.out)["kept"]
    assert {p.name: p.read_bytes() for p in (zoo / "alpha").iterdir()} == before


def test_an_unknown_entry_is_a_clear_error(fer_command, synthetic_folders, tmp_path):
    status, out = fer_command("zoo", "soup", "nobody", "--with", "x.keras", "--data", str(synthetic_folders),
                              "--zoo-dir", str(tmp_path))
    assert status == 2 and "No zoo entry named 'nobody'" in out.err


@pytest.mark.parametrize("souped_cycle", [False, True])
def test_the_card_reproduces_a_soup_after_the_cycle_it_mixes(souped_cycle):
    from fer.export import SOUP_CYCLES, _reproduce_model
    from fer.training import TrainConfig

    soup = {"with": "/somewhere/start.keras", "validation_accuracy": {"entry": 0.5, "soup": 0.6}, "kept": True}
    first = {"from": "model_zoo/custom_cnn", "config": TrainConfig(epochs=40).to_dict(), "epochs": 40}
    second = {"from": "model_zoo/custom_cnn", "config": TrainConfig(epochs=20, init_from="model_zoo/custom_cnn").to_dict(),
              "epochs": 20, "init": first, **({"soup": soup} if souped_cycle else {})}
    config = TrainConfig(init_from="model_zoo/custom_cnn", schedule="constant", epochs=12, average_last=7)
    text = _reproduce_model(config, {"init": second, "soup": soup})
    lines = text.split("```bash\n")[1].split("\n```")[0].splitlines()
    assert "--name custom_cnn_cycle1 " in lines[0] and lines[0].endswith("--no-export")
    assert "--name custom_cnn_cycle2 " in lines[1]
    if souped_cycle:
        assert lines[1].endswith(f"--init-from runs/custom_cnn_cycle1/best.keras --zoo-dir {SOUP_CYCLES}")
        assert lines[2] == ("python -m fer zoo soup custom_cnn_cycle2 --with runs/custom_cnn_cycle1/best.keras --data "
                            f"PATH/TO/fer2013 --zoo-dir {SOUP_CYCLES}")
        start = f"{SOUP_CYCLES}/custom_cnn_cycle2"
    else:
        assert lines[1].endswith("--init-from runs/custom_cnn_cycle1/best.keras --no-export")
        start = "runs/custom_cnn_cycle2/best.keras"
    assert lines[-2].endswith(f"--init-from {start}") and len(lines) == 4 + souped_cycle
    assert lines[-1] == f"python -m fer zoo soup custom_cnn --with {start} --data PATH/TO/fer2013"
    assert "3 cycles" in text and "`python -m fer zoo soup` averages a cycle's weights" in text


def test_the_card_starts_the_next_cycle_from_the_soup_train_py_kept():
    from fer.export import _reproduce_model
    from fer.training import TrainConfig

    kept_soup = {"epochs": [2, 3], "validation_accuracy": {"best_epoch": 0.5, "average": 0.6, "soup": 0.7},
                 "chosen": "soup"}
    cycle = {"from": "model_zoo/custom_cnn", "config": TrainConfig(epochs=3, average_last=2).to_dict(), "epochs": 3,
             "weight_average": kept_soup}
    text = _reproduce_model(TrainConfig(init_from="model_zoo/custom_cnn", epochs=5), {"init": cycle})
    assert "--init-from runs/custom_cnn_cycle1/soup.keras" in text
