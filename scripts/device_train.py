"""Train on the GPU machine (JAX + CUDA, no TensorFlow), export here.

Here, once (reads ../shared/fer2013; writes .devicepack/: train + validation faces, never test; the
Keras wheels the device lacks; refuses if a device call would carry more than 64 MiB, which the zoo's
weights alone exceed: `aside` moves them to the ignored .zoo-aside/ for the device calls, `back` returns
them before reassembling):

    python scripts/device_train.py aside && python scripts/device_train.py pack

On the device: the device tool's `run`, with carry [".devicepack"], timeout_s 600 and the command

    set -o pipefail; python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
    --target /tmp/site .devicepack/wheels/*.whl && export PYTHONPATH=/tmp/site KERAS_BACKEND=jax
    PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=runs/.jax-cache && python3 scripts/device_train.py train
    --arch custom_cnn --name custom_cnn_gpu --epochs 60 --batch-size 512 --lr 2e-3 --warmup-epochs 3
    2>&1 | tee $OUT/train.log

(one line; the hyperparameters are an example, not tuned yet). A command stops cleanly before
--time-budget seconds (default 510, inside the 10-minute limit); while the machine is still held, the
same command with --resume continues from runs/<name>/ on the device, until it prints "Finished". At most
every --save-every seconds (default 60) and when the command ends, $OUT gets report.json and the best
epoch's float16 weights (weights-NN.npz) and the run its checkpoint: what comes back from each call is the
run up to its last epoch, and a lost machine costs at most a minute of the command.

Here, with the folder the files came back to (files_at):

    python scripts/device_train.py back
    python scripts/device_train.py reassemble FILES_AT --name custom_cnn_gpu
    python train.py --arch custom_cnn --output runs --name custom_cnn_gpu --resume

`reassemble` writes runs/<name>/ (best.keras, config.json, history.csv, hardware.txt, device.json) only
if the weights score the device's validation accuracy here too (within 0.001); `train.py --resume` then
evaluates the finished run on test and exports it to the zoo. A run cut short (the machine was lost)
can be kept with `reassemble --partial`.

Throughput of each architecture: on the device `python3 scripts/device_train.py bench` (same set-up as
train, `> $OUT/bench.json` at the end instead of the tee), then here
`python scripts/device_train.py record FILES_AT/bench.json` adds it to benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path

STARTED = time.monotonic()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere
DEVICE_COMMANDS = ("train", "bench")
if (len(sys.argv) > 1 and sys.argv[1] in DEVICE_COMMANDS) or importlib.util.find_spec("tensorflow") is None:
    os.environ.setdefault("KERAS_BACKEND", "jax")  # the device has no TensorFlow; before anything imports Keras

from fer.logs import quiet_tensorflow  # noqa: E402

quiet_tensorflow()  # here: pack and reassemble build and save models with TensorFlow (nothing on JAX)

from fer.device_files import PACK_DIR, PRECISIONS, DeviceConfig  # noqa: E402
from fer.errors import run_command  # noqa: E402
from fer.options import ArgumentParser, add_arguments, from_args  # noqa: E402
from fer.training import TrainConfig  # noqa: E402

DEFAULT_OUT = "device_out"  # where $OUT's files go when OUT is not set (a run on this machine)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="command", required=True)

    packing = commands.add_parser("pack", help="here: write .devicepack/ and check the 64 MiB a call carries")
    packing.add_argument("--data", default=TrainConfig.data, help="the data to pack (default: %(default)s)")
    packing.add_argument("--val-fraction", type=float, default=TrainConfig.val_fraction,
                         help="validation slice of train, as train.py cuts it (default: %(default)s)")
    packing.add_argument("--seed", type=int, default=TrainConfig.seed,
                         help="seed of the validation slice, the shuffling and the initial weights (default: %(default)s)")
    packing.add_argument("--no-wheels", dest="wheels", action="store_false",
                         help="pack no wheels (a run on a machine that has Keras)")

    training = commands.add_parser(
        "train", help="on the device: train or --resume a run",
        description="train.py's options (fer.training.TrainConfig) and the device's. The data, --val-fraction "
                    "and --seed are the pack's; --weights, --init-from, --strategy, --logical-cpus and --teacher "
                    "are refused.")
    add_arguments(training, TrainConfig)
    add_arguments(training, DeviceConfig)
    training.add_argument("--resume", action="store_true", help="continue runs/<name>/ on this machine")
    training.add_argument("--time-budget", type=float, default=510.0,
                          help="seconds after which no new epoch starts (a device command may run 600)")
    training.add_argument("--save-every", type=float, default=60.0,
                          help="seconds between writes of the checkpoint and $OUT; the end of a command always "
                               "writes them (default: %(default)s)")

    bench = commands.add_parser("bench", help="on the device: training throughput per architecture (JSON on stdout)")
    bench.add_argument("--archs", nargs="+", default=None, help="architectures (default: all)")
    bench.add_argument("--batch-size", type=int, default=512)
    bench.add_argument("--steps", type=int, default=20, help="steps an epoch is timed over")
    bench.add_argument("--precision", default="auto", choices=PRECISIONS)

    for sub in (packing, training):
        sub.add_argument("--pack-dir", type=Path, default=Path(PACK_DIR), help="the pack (default: %(default)s)")
    training.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", DEFAULT_OUT)),
                          help="where report.json and the weight shards go (default: $OUT, else %(default)s)")

    back = commands.add_parser("reassemble", help="here: the fetched files -> runs/<name>/, checked on validation")
    back.add_argument("fetched", type=Path, help="the folder the device's $OUT files were fetched to")
    back.add_argument("--output", default="runs", help="runs folder (default: %(default)s)")
    back.add_argument("--name", default=None, help="run name (default: the device run's)")
    back.add_argument("--data", default=None, help="the packed data, if it lies elsewhere here")
    back.add_argument("--partial", action="store_true", help="keep a run that did not do all its epochs")

    commands.add_parser("aside", help="here: move the zoo's weights out of the working tree a device call carries")
    commands.add_parser("back", help="here: put the zoo's weights back after the last device call")

    record = commands.add_parser("record", help="here: add measured speeds (bench JSON, or finished runs' "
                                                "report.json) to benchmarks/results.json")
    record.add_argument("bench_json", type=Path, nargs="+")
    record.add_argument("--results", type=Path, default=Path("benchmarks/results.json"))
    return p


def run_pack(args) -> None:
    from fer.device_host import pack

    size = pack(args.data, args.val_fraction, args.seed, args.pack_dir, wheels=args.wheels)
    print(f"Packed {args.pack_dir}: {size.summary()}. Carry {args.pack_dir} on the device call.")


def run_train(args) -> None:
    from fer.device import train

    report = train(from_args(TrainConfig, args), from_args(DeviceConfig, args), args.pack_dir, args.out,
                   resume=args.resume, time_budget=args.time_budget, started=STARTED,
                   save_every=args.save_every)
    state = "finished" if report.finished else f"{report.epochs_done} of {report.train_config['epochs']} epochs"
    print(f"{report.run_name}: {state}, best validation accuracy {report.best_val_accuracy:.4f}, "
          f"{report.faces_per_second:,.0f} faces/s on {report.device} ({report.precision}, batch "
          f"{report.train_config['batch_size']}); $OUT: {args.out}")


def run_bench(args) -> None:
    from fer.device import benchmark
    from fer.models import ARCHITECTURES

    result = benchmark(args.archs or list(ARCHITECTURES), args.batch_size, args.steps,
                       DeviceConfig(precision=args.precision))
    print(json.dumps(result, indent=2))


def run_reassemble(args) -> None:
    from fer.device_host import reassemble

    done = reassemble(args.fetched, output=args.output, name=args.name, data=args.data, partial=args.partial)
    print(f"{done.run_dir}: {done.epochs} epochs, validation accuracy {done.val_accuracy_here:.4f} here, "
          f"{done.val_accuracy_device:.4f} on the device. Evaluate on test and export:\n  {done.next_command()}")


def run_record(args) -> None:
    from fer.device_host import record_benchmark

    for path in args.bench_json:
        key = record_benchmark(json.loads(path.read_text()), args.results)
        print(f"Recorded {path} under {key!r} in {args.results}")


def run_aside(args) -> None:
    from fer.device_host import ASIDE_DIR, zoo_weights_aside

    moved = zoo_weights_aside()
    print(f"Moved {len(moved)} zoo weights to {ASIDE_DIR}/ (ignored) for the device calls; afterwards: "
          "python scripts/device_train.py back")


def run_back(args) -> None:
    from fer.device_host import zoo_weights_back

    print(f"Put {len(zoo_weights_back())} zoo weights back in model_zoo/.")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)  # not its search for a TPU
    action = {"pack": run_pack, "train": run_train, "bench": run_bench, "reassemble": run_reassemble,
              "record": run_record, "aside": run_aside, "back": run_back}[args.command]
    return run_command(lambda: action(args))


if __name__ == "__main__":
    sys.exit(main())
