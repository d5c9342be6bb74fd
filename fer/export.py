"""The model zoo, write side: a trained network becomes an entry (weights, metrics, card, sha256).

Entries are written to a temporary folder and renamed into place, so a crash never leaves half an
entry. The read side (fer.zoo) loads what this writes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from fer.evaluation import cpu_latency_ms, plot_confusion_matrix
from fer.labels import EMOTIONS
from fer.metrics import EvaluationResult
from fer.models import architecture, with_tta
from fer.options import options
from fer.training import HARDWARE_FILE, TrainConfig, command_line, describe_cpu, epochs_done, training_seconds
from fer.zoo import METRICS_FILE, MODEL_FILE, sha256_of, write_manifest


def export_entry(network, config: TrainConfig, test: EvaluationResult, val: EvaluationResult, run_dir: Path,
                 train_seconds: float, tta: str = "none", tta_validation: dict | None = None) -> Path:
    """Write ``<zoo_dir>/<name>/`` atomically and return its path.

    ``network`` is the bare trained network; ``tta`` the test-time augmentation the zoo reader wraps it
    in (and that ``test`` and ``val`` were measured with).
    """
    name = config.run_name
    zoo_dir = Path(config.zoo_dir)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=zoo_dir))
    tmp.chmod(0o755)  # mkdtemp makes it private; an entry is meant to be shared
    try:
        network.save(tmp / MODEL_FILE)
        plot_confusion_matrix(test, tmp / "confusion_matrix.png", title=f"{name} on {test.split}")
        if (run_dir / "training_curves.png").exists():
            shutil.copy(run_dir / "training_curves.png", tmp / "training_curves.png")
        if (run_dir / "history.csv").exists():
            shutil.copy(run_dir / "history.csv", tmp / "history.csv")
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        metrics = {
            "name": name,
            "architecture": config.architecture,
            "weights": config.weights or "none",
            "parameters": int(network.count_params()),
            "sha256": sha256_of(tmp / MODEL_FILE),
            "size_bytes": (tmp / MODEL_FILE).stat().st_size,
            "tta": tta,
            "tta_validation_accuracy": tta_validation or {},
            "latency_ms": round(cpu_latency_ms(with_tta(network, tta)), 2),
            "latency_on": describe_cpu(),
            "data": config.data,
            "epochs": epochs_done(run_dir / "history.csv"),
            "trained_on": trained_on(run_dir),
            "train_seconds": round(train_seconds, 1),
            "test": test.to_dict(),
            "validation": val.to_dict(),
        }
        if config.init_from:
            metrics["init"] = initial_run(config.init_from)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "README.md").write_text(model_card(metrics, config))
        final = zoo_dir / name
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=zoo_dir))
            os.replace(final, old / name)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
        write_manifest(zoo_dir)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


DEFAULT_HARDWARE = "a 2-core CPU"  # entries exported before runs recorded their hardware trained on this one


def trained_on(run_dir: Path) -> str:
    path = run_dir / HARDWARE_FILE
    return path.read_text().strip() if path.is_file() else DEFAULT_HARDWARE


def earlier_cycles(metrics: dict) -> list[dict]:
    """The cycles a warm restart grew from (each ``initial_run``), the first cycle first."""
    chain, init = [], metrics.get("init")
    while init:
        chain.insert(0, init)
        init = init.get("init")
    return chain


def training_cost(metrics: dict) -> tuple[int, float]:
    """Epochs and seconds of training in all, every earlier cycle of a warm restart included."""
    runs = [*earlier_cycles(metrics), metrics]
    return sum(r.get("epochs", 0) for r in runs), sum(r.get("train_seconds", 0) for r in runs)


def initial_run(init_from: str) -> dict:
    """What a warm restart started from: that run's config and cost (and what it grew from), where they
    lie beside it."""
    path = Path(init_from)
    folder = path if path.is_dir() else path.parent
    run = {"from": init_from}
    if (folder / "config.json").is_file():
        run["config"] = json.loads((folder / "config.json").read_text())
    if (folder / METRICS_FILE).is_file():
        first = json.loads((folder / METRICS_FILE).read_text())
        run.update(epochs=first["epochs"], train_seconds=first["train_seconds"],
                   trained_on=first.get("trained_on", DEFAULT_HARDWARE))
        if first.get("init"):
            run["init"] = first["init"]
    elif (folder / "history.csv").is_file():  # a run folder that was never exported
        run.update(epochs=epochs_done(folder / "history.csv"),
                   train_seconds=round(training_seconds(folder / "history.csv"), 1), trained_on=trained_on(folder))
    return run


def _reproduce_model(config, metrics: dict) -> str:
    cycles = earlier_cycles(metrics)
    if not cycles:
        return f"Reproduce the model: `{command_line(config, data='PATH/TO/fer2013')}`"
    if any("config" not in cycle for cycle in cycles):
        return (f"Reproduce the model: `{command_line(config, data='PATH/TO/fer2013')}` (a warm restart "
                f"from `{metrics['init']['from']}`)")
    configs, init_from = [], None
    for k, cycle in enumerate(cycles, 1):
        configs.append(TrainConfig.from_dict({**cycle["config"], "name": f"{config.run_name}_cycle{k}",
                                              "init_from": init_from, "export": False}))
        init_from = f"runs/{configs[-1].run_name}/best.keras"
    configs.append(TrainConfig.from_dict({**config.to_dict(), "init_from": init_from}))
    commands = "\n".join(command_line(c, data="PATH/TO/fer2013") for c in configs)
    return f"""Reproduce the model: {len(configs)} cycles, each after the first a warm restart from the best
epoch of the one before (the learning rate rises again and decays over a new cosine cycle; same
validation slice):

```bash
{commands}
```"""


def _cycle_epochs(cycle: dict) -> str:
    planned = cycle.get("config", {}).get("epochs", cycle["epochs"])
    return str(cycle["epochs"]) if cycle["epochs"] >= planned else f"{cycle['epochs']} (stopped early, of {planned} planned)"


def options_table(config: TrainConfig) -> str:
    """Every training option with its flag, this run's value and its help text, as a markdown table."""
    lines = ["| option | flag | value | meaning |", "|---|---|---|---|"]
    for opt in options(TrainConfig):
        value = opt.get(config)
        shown = opt.none if value is None and opt.none else value
        lines.append(f"| {opt.name} | `{opt.flag}` | `{shown}` | {opt.help.replace('|', '/')} |")
    return "\n".join(lines)


def model_card(metrics: dict, config: TrainConfig) -> str:
    """A Hugging Face model card (YAML metadata + markdown) for an entry."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    name = metrics["name"]
    test = EvaluationResult.from_dict(metrics["test"])
    dataset = dict(dataset_type="fer2013", dataset_name="FER-2013", dataset_split=test.split)
    task = dict(task_type="image-classification", task_name="Facial expression recognition")
    data = ModelCardData(
        library_name="keras",
        pipeline_tag="image-classification",
        datasets=["fer2013"],
        license="mit",
        tags=["facial-expression-recognition", "emotion", "fer2013", "keras", config.architecture],
        model_name=name,
        eval_results=[
            EvalResult(**task, **dataset, metric_type="accuracy", metric_name="Accuracy", metric_value=round(test.accuracy, 4)),
            EvalResult(**task, **dataset, metric_type="f1", metric_name="Macro F1", metric_value=round(test.macro_f1, 4)),
        ],
    )
    rows = "\n".join(
        f"| {e} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
        for e, m in test.per_class.items())
    hours = metrics["train_seconds"] / 3600
    tta = {
        "none": "a single forward pass",
        "flip": "the mean of the scores of the face and its mirror image (flip test-time augmentation, "
                "which `fer.zoo.load_model` wraps around the saved network)",
        "flip_shift": "the mean of the scores of 10 views: the face and its mirror image, each also shifted "
                      "by 2 pixels up, down, left and right (test-time augmentation, which `fer.zoo.load_model` "
                      "wraps around the saved network)",
    }[metrics["tta"]]
    if metrics.get("tta_validation_accuracy"):
        tta += (" — chosen on the validation slice (" + ", ".join(
            f"{m}: {a:.4f}" for m, a in metrics["tta_validation_accuracy"].items()) + ")")
    c = config.to_dict()
    arch = architecture(config.architecture)
    start = {None: "from scratch (random initial weights)"}.get(
        config.weights, f"starting from {config.weights} weights")
    if config.init_from:
        start = f"as a warm restart from `{config.init_from}`"
    cycles = [*earlier_cycles(metrics), metrics]
    hardware = list(dict.fromkeys(cycle.get("trained_on", DEFAULT_HARDWARE) for cycle in cycles))
    cost = f"{metrics['epochs']} epochs, {hours:.2f} h on {hardware[-1]}"
    if all("epochs" in cycle for cycle in cycles) and len(cycles) > 1:
        epochs, seconds = training_cost(metrics)
        cost = (f"{len(cycles)} training cycles of " + ", ".join(_cycle_epochs(c) for c in cycles)
                + f" epochs, each after the first a warm restart: {epochs} epochs, {seconds / 3600:.2f} h in all on "
                + " and ".join(hardware))
    content = f"""---
{data.to_yaml()}
---

# {name}: facial expression recognition on FER-2013

`{config.architecture}` trained {start} on FER-2013 by this project's `train.py`. It takes a
{arch.input_size}x{arch.input_size} grayscale face (raw 0-255 pixels; preprocessing inside the model: {arch.preprocessing})
and returns probabilities for {", ".join(EMOTIONS)}. Each prediction is {tta}.

## Results on the FER-2013 {test.split} split ({test.n} faces)

Accuracy **{test.accuracy:.4f}**, macro F1 **{test.macro_f1:.4f}**. Checkpoint chosen on a seeded,
stratified {c['val_fraction']:.0%} validation slice of the training set (validation accuracy
{metrics['validation']['accuracy']:.4f}); the test split was used for this report only.

| emotion | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

![confusion matrix](confusion_matrix.png)

![training curves](training_curves.png)

Reproduce the numbers: `python -m fer evaluate --model {name} --data PATH/TO/fer2013`

## Training

{cost}; {metrics['parameters']:,} parameters;
{metrics['latency_ms']:.1f} ms to score one face on {metrics.get('latency_on', DEFAULT_HARDWARE)} (batch of one, test-time augmentation included).
AdamW with a {c['schedule']} learning-rate schedule. Every training option (`python train.py --help`), as this
run set it; the run record is `config.json`, the per-epoch history `history.csv`:

{options_table(config)}

{_reproduce_model(config, metrics)}

## Intended use and limits

For research, teaching and demos of facial expression recognition. FER-2013 is mostly frontal faces
of adults scraped from the web, with noisy labels (human accuracy is about 65%); expect worse results on
children, profile views, occlusions and faces unlike that data. A facial expression is not a feeling:
the model scores how a face looks, not what a person feels. Do not use it for decisions about people
(hiring, policing, health, education, surveillance).
"""
    ModelCard(content)  # fails loudly if the metadata does not parse
    return content
