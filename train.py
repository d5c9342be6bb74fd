"""Train one architecture on FER-2013 and export it to the model zoo.

    python train.py --arch custom_cnn --data ../shared/fer2013 --epochs 40
    python train.py --arch custom_cnn --resume          # continue a run after a crash or kill

Every training option is a field of fer.training.TrainConfig (its help text is the flag's).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fer.errors import run_command
from fer.options import ArgumentParser, add_arguments, from_args
from fer.training import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, TrainConfig)
    p.add_argument("--no-augment", action="store_true", help="switch all augmentation off")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="upload the exported entry to this Hub model repo (USER/REPO; needs a token)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --output/--name from its last epoch (its saved options rule; "
                        "a --schedule constant run takes --epochs and --average-last)")
    p.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own logs too")
    return p


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    config = from_args(TrainConfig, args)
    if args.no_augment:
        config.augment = type(config.augment).off()
    return config, args


def given_options(argv: list[str]) -> frozenset[str]:
    """The options ``argv`` sets itself (not left to their defaults), by their config names."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config, args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_command(lambda: train(config, args, argv))


def train(config: TrainConfig, args: argparse.Namespace, argv: list[str]) -> None:
    from fer.data import detect_kind
    from fer.logs import quiet_tensorflow
    from fer.training import check_new_run

    if not args.resume:  # the mistakes that need no TensorFlow are refused before its start-up (seconds)
        check_new_run(config)
        detect_kind(Path(config.data))
    quiet_tensorflow(args.verbose)
    from fer.recipe import run

    # On --resume the saved config rules, but for where data and entry live and how it is scored (given_options).
    run(config, resume=args.resume, explicit=given_options(argv), push_to_hub=args.push_to_hub)


if __name__ == "__main__":
    sys.exit(main())
