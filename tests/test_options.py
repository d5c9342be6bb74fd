"""One definition of the training options: TrainConfig's fields make train.py's flags, the reproduce
command and the model card's options table."""

import dataclasses
import shlex

import pytest

import train
from fer.augment import AugmentConfig
from fer.export import options_table
from fer.options import option, options
from fer.training import TrainConfig, command_line


def _field_names():
    for f in dataclasses.fields(TrainConfig):
        if f.name == "augment":
            yield from (f"augment.{a.name}" for a in dataclasses.fields(AugmentConfig))
        else:
            yield f.name


def test_every_field_is_an_option_with_help():
    assert [opt.name for opt in options(TrainConfig)] == list(_field_names())
    assert all(opt.help for opt in options(TrainConfig))


def test_every_field_reaches_the_command_line():
    """Each option, set away from its default, survives command_line -> train.py's parser."""
    flags = train.build_parser().format_help()
    changed = dict(architecture="vgg16", data="d/fer2013.csv", name="n", output="o", epochs=3, batch_size=8,
                   learning_rate=0.5, schedule="constant", warmup_epochs=2.0, weight_decay=0.1, label_smoothing=0.0,
                   class_weight="balanced", oversample=0.5, val_fraction=0.2, seed=3, weights="imagenet",
                   init_from="x.keras", strategy="mirrored", logical_cpus=2, tta="flip", zoo_dir="z", export=False,
                   teacher="ensemble", teacher_zoo="t", distill_weight=0.7, average_last=2, soup=True)
    augment = AugmentConfig(flip=False, rotation=1.0, shift=0.2, zoom=0.3, brightness=0.4, contrast=0.5)
    assert set(changed) | {"augment"} == {f.name for f in dataclasses.fields(TrainConfig)}, "test covers every field"
    config = TrainConfig(**changed, augment=augment)
    for opt in options(TrainConfig):
        assert opt.flag in flags
        assert opt.get(config) != opt.default, f"{opt.name} is not changed by this test"
    words = shlex.split(command_line(config))[2:]
    words += ["--output", "o", "--zoo-dir", "z"]  # where files go: left out of reproduce commands on purpose
    assert train.parse_args(words)[0] == config
    assert shlex.split(command_line(TrainConfig()))[2:] == ["--arch", "custom_cnn", "--data", "../shared/fer2013"]


def test_every_field_reaches_the_card():
    config = TrainConfig(epochs=7, class_weight="balanced")
    table = options_table(config)
    for opt in options(TrainConfig):
        assert f"| {opt.name} | `{opt.flag}` |" in table
    assert "| epochs | `--epochs` | `7` |" in table and "| class_weight | `--class-weight` | `balanced` |" in table


def test_a_new_option_is_a_one_place_change():
    @dataclasses.dataclass
    class Config:
        depth: int = option(3, "layers")
        fast: bool = option(False, "go fast")

    parser = train.ArgumentParser()
    from fer.options import add_arguments, command_args, from_args

    add_arguments(parser, Config)
    config = from_args(Config, parser.parse_args(["--depth", "5", "--fast"]))
    assert config == Config(depth=5, fast=True)
    assert command_args(config) == ["--depth", "5", "--fast"]


def test_a_field_without_help_is_refused():
    @dataclasses.dataclass
    class Config:
        depth: int = 3

    with pytest.raises(TypeError, match="option"):
        list(options(Config))


def test_given_options_are_those_on_the_command_line_not_the_defaults():
    assert not {"zoo_dir", "data", "tta"} & train.given_options([])
    given = train.given_options(["--zoo-dir", "model_zoo", "--tta=flip", "--no-flip", "--resume"])
    assert {"zoo_dir", "tta", "augment.flip", "resume"} <= given  # a default value, given, still counts
    assert not {"data", "learning_rate", "export"} & given


def test_resume_takes_locations_given_now_but_new_data_only_once_training_is_done(tmp_path):
    import json

    from fer.errors import ConfigError
    from fer.training import resumed_config

    saved = TrainConfig(epochs=3, data="old", zoo_dir="zoo")
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n0,0.5\n")
    given = TrainConfig(epochs=9, data="new", zoo_dir="candidates", learning_rate=1.0)
    config = resumed_config(tmp_path, given, {"zoo_dir", "epochs", "learning_rate"})
    assert (config.zoo_dir, config.epochs, config.learning_rate, config.data) == ("candidates", 3, 1e-3, "old")
    assert resumed_config(tmp_path, given, set()).zoo_dir == "zoo", "defaults left alone are not given"
    with pytest.raises(ConfigError, match="epochs left to train"):
        resumed_config(tmp_path, given, {"data"})
    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n0,0.5\n1,0.6\n2,0.7\n")
    assert resumed_config(tmp_path, given, {"data"}).data == "new"


def test_a_constant_rate_run_changes_its_length_on_resume_where_its_mean_can_still_hold_the_window(tmp_path):
    import json

    import numpy as np

    from fer.errors import ConfigError
    from fer.training import AVERAGE_FILE, resumed_config

    def resume(saved: TrainConfig, epochs: int, average_last: int) -> TrainConfig:
        (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
        given = TrainConfig(epochs=epochs, average_last=average_last)
        return resumed_config(tmp_path, given, {"epochs", "average_last"})

    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n0,0.5\n1,0.6\n")  # two epochs done
    constant = TrainConfig(schedule="constant", epochs=8, average_last=6)  # averages from epoch 3
    assert (resume(constant, 3, 2).epochs, resume(constant, 3, 2).average_last) == (3, 2)  # takes in epoch 2
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 3, "a later --resume trains 3"
    cosine = TrainConfig(epochs=8, average_last=6)  # its rate depends on the epochs: kept as saved
    assert (resume(cosine, 3, 2).epochs, resume(cosine, 3, 2).average_last) == (8, 6)
    with pytest.raises(ConfigError, match="at least 2"):
        resume(constant, 1, 0)
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig(schedule="constant", epochs=2).to_dict()))
    with pytest.raises(ConfigError, match="epochs left to train"):  # lengthened: new data would change them
        resumed_config(tmp_path, TrainConfig(epochs=4, data="new"), {"epochs", "data"})
    with pytest.raises(ConfigError, match="epochs before epoch 2 .* are gone.*--average-last 2"):
        resume(constant, 3, 3)  # epoch 1's weights were never kept
    with pytest.raises(ConfigError, match="no epoch left to train"):
        resume(constant, 2, 1)
    np.savez(tmp_path / AVERAGE_FILE, epochs=np.array([1]), w0=np.zeros(2))  # a mean from epoch 2 on
    assert resume(TrainConfig(schedule="constant", epochs=8, average_last=7), 4, 3).epochs == 4
    with pytest.raises(ConfigError, match="mean kept so far starts at epoch 2.*--average-last 3"):
        resume(TrainConfig(schedule="constant", epochs=8, average_last=7), 4, 2)  # would drop epoch 2
