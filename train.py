"""Train one architecture on FER-2013 and export it to the model zoo.

    python train.py --arch custom_cnn --data ../shared/fer2013 --epochs 40
    python train.py --arch custom_cnn --resume          # continue a run after a crash or kill
"""

from __future__ import annotations

import argparse
import logging
import sys

from fer.augment import CLASS_WEIGHT_MODES, AugmentConfig
from fer.errors import FerError
from fer.models import ARCHITECTURES, TTA_MODES
from fer.recipe import run
from fer.training import STRATEGIES, TrainConfig


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    d = TrainConfig()
    a = AugmentConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=list(ARCHITECTURES), default=d.architecture, help="architecture to train")
    p.add_argument("--data", default=d.data, help="fer2013.csv, a folder with train/ and test/, or an emotion-folder tree")
    p.add_argument("--name", default=None, help="run and zoo entry name (default: the architecture)")
    p.add_argument("--output", default=d.output, help="folder for runs (checkpoints, history, curves)")
    p.add_argument("--zoo-dir", default=d.zoo_dir, help="model zoo folder the entry is exported to")
    p.add_argument("--no-export", action="store_true", help="train and evaluate, but do not export a zoo entry")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.learning_rate, help="peak learning rate (AdamW)")
    p.add_argument("--schedule", choices=["cosine", "constant"], default=d.schedule)
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--class-weight", default=d.class_weight,
                   help=f"{', '.join(CLASS_WEIGHT_MODES)} or JSON per class, e.g. '{{\"disgust\": 4}}'")
    p.add_argument("--oversample", type=float, default=d.oversample,
                   help="repeat rare classes up to this fraction of the largest class (0: off)")
    p.add_argument("--no-flip", action="store_true", help="augmentation: no horizontal flips")
    p.add_argument("--rotation", type=float, default=a.rotation, help="augmentation: max rotation, degrees (0: off)")
    p.add_argument("--shift", type=float, default=a.shift, help="augmentation: max shift, fraction of side (0: off)")
    p.add_argument("--zoom", type=float, default=a.zoom, help="augmentation: max zoom (0: off)")
    p.add_argument("--brightness", type=float, default=a.brightness, help="augmentation: brightness factor (0: off)")
    p.add_argument("--contrast", type=float, default=a.contrast, help="augmentation: contrast factor (0: off)")
    p.add_argument("--no-augment", action="store_true", help="switch all augmentation off")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="stratified validation slice of train")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--weights", choices=["none", "imagenet"], default="none",
                   help="initial weights for vgg16/resnet50v2 (imagenet needs internet)")
    p.add_argument("--init-from", metavar="MODEL", default=None,
                   help="start from the weights of a trained model of the same architecture (a .keras file, "
                        "zoo entry or zoo name): a warm restart with a new learning-rate cycle")
    p.add_argument("--strategy", choices=list(STRATEGIES), default=d.strategy,
                   help="mirrored: synchronous data-parallel training on every GPU of this machine (see README)")
    p.add_argument("--logical-cpus", type=int, default=d.logical_cpus, metavar="N",
                   help="split the CPU into N devices, to try --strategy mirrored on a machine without GPUs")
    p.add_argument("--tta", choices=["auto", *TTA_MODES], default=None,
                   help=f"test-time augmentation baked into the exported model (default {d.tta}: the best of "
                        f"{', '.join(TTA_MODES)} on validation); may be changed on --resume")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="upload the exported entry to this Hub model repo (USER/REPO; needs a token)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output/--name from its last epoch")
    args = p.parse_args(argv)

    augment = AugmentConfig(flip=not args.no_flip, rotation=args.rotation, shift=args.shift, zoom=args.zoom,
                            brightness=args.brightness, contrast=args.contrast)
    if args.no_augment:
        augment = AugmentConfig(flip=False, rotation=0, shift=0, zoom=0, brightness=0, contrast=0)
    config = TrainConfig(
        architecture=args.arch, data=args.data, name=args.name, output=args.output, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, schedule=args.schedule,
        warmup_epochs=args.warmup_epochs, weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
        class_weight=args.class_weight, oversample=args.oversample, augment=augment,
        val_fraction=args.val_fraction, seed=args.seed, weights=None if args.weights == "none" else args.weights,
        init_from=args.init_from, strategy=args.strategy, logical_cpus=args.logical_cpus,
        tta=args.tta or d.tta, zoo_dir=args.zoo_dir, export=not args.no_export)
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(config, resume=args.resume, tta=args.tta, push_to_hub=args.push_to_hub)
    except (FerError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
