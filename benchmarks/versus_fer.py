"""End to end against the `fer` package: photo -> faces -> scores, this project (default detector, custom_cnn)
against `fer`'s own pipeline (`FER(mtcnn=True, use_tflite=False).detect_emotions`: facenet-pytorch MTCNN + its
mini-Xception from emotion_model.hdf5; --fer-tflite for its quantized TFLite default),
in one process, alternating the two photo by photo.

    pip install --no-deps --target /tmp/fer_pypi fer facenet-pytorch torch torchvision  # + torch's CUDA libs
    python benchmarks/versus_fer.py --fer-path /tmp/fer_pypi [--photos ../shared/photos] [--rounds 3]

`fer` is not a dependency of this project and its import name clashes with ours, so it is loaded from
--fer-path under the name ``fer_pypi``; its model is read from its wheel's ``data/emotion_model.hdf5`` by path.
Both pipelines start from the photo's file path. Per photo the median over --rounds is kept; the result is
the median over the photos of each, and their ratio (this project / fer: at most 1.0 means no slower).
Results go to the "versus_fer" block of --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere


def load_fer_package(root: Path):
    """`fer`'s FER class from ``root/fer``, imported as ``fer_pypi`` so that it does not replace this project's
    ``fer``; its resource lookups (which would find this project's package) point into ``root/fer``."""
    package_dir = root / "fer"
    if not (package_dir / "fer.py").exists():
        raise SystemExit(f"No fer package at {package_dir}: install it with pip install --target {root} fer")
    sys.path.append(str(root))  # facenet_pytorch, torch: after this project's own paths
    package = types.ModuleType("fer_pypi")
    package.__path__ = [str(package_dir)]
    sys.modules["fer_pypi"] = package
    spec = importlib.util.spec_from_file_location("fer_pypi.fer", package_dir / "fer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fer_pypi.fer"] = module
    spec.loader.exec_module(module)
    module.pkg_resources = types.SimpleNamespace(resource_filename=lambda _, name: str(package_dir / name))
    return module.FER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer-path", required=True, help="folder that `pip install --target` put fer into")
    parser.add_argument("--photos", default="../shared/photos")
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fer-tflite", action="store_true",
                        help="score with fer's quantized TFLite model (its default) instead of emotion_model.hdf5")
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()

    from fer.logs import quiet_tensorflow

    quiet_tensorflow()
    import logging

    from fer.faces import DEFAULT_DETECTOR
    from fer.inference import Recognizer

    FER = load_fer_package(Path(args.fer_path))
    logging.getLogger().setLevel(logging.WARNING)  # fer's import calls logging.basicConfig(level=INFO)
    theirs = FER(mtcnn=True, use_tflite=args.fer_tflite)
    ours = Recognizer.from_zoo(names=[args.model])
    photos = sorted(Path(args.photos).glob("*.jpg"))
    pipelines = {
        "this_project": lambda p: len(ours.predict(str(p), models=[args.model]).faces),
        "fer_package": lambda p: len(theirs.detect_emotions(str(p))),
    }
    for run in pipelines.values():  # build, trace and warm both before timing
        run(photos[0])
    seconds = {name: {p.name: [] for p in photos} for name in pipelines}
    faces = {name: {} for name in pipelines}
    for _ in range(args.rounds):
        for photo in photos:
            for name, run in pipelines.items():
                start = time.perf_counter()
                faces[name][photo.name] = run(photo)
                seconds[name][photo.name].append(time.perf_counter() - start)
    per_photo = {name: {p: float(np.median(t)) * 1000 for p, t in times.items()} for name, times in seconds.items()}
    median = {name: float(np.median(list(ms.values()))) for name, ms in per_photo.items()}
    import torch

    block = {
        "photos": f"{len(photos)} photos of {args.photos}", "rounds": args.rounds,
        "this_project": {"detector": DEFAULT_DETECTOR, "model": args.model, "median_ms": round(median["this_project"], 1)},
        "fer_package": {"version": _fer_version(Path(args.fer_path)), "detector": "facenet-pytorch MTCNN",
                        "model": "mini-Xception, " + ("quantized TFLite" if args.fer_tflite else "emotion_model.hdf5"),
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                        "median_ms": round(median["fer_package"], 1)},
        "ratio": round(median["this_project"] / median["fer_package"], 3),
        "per_photo_ms": {name: {p: round(v, 1) for p, v in ms.items()} for name, ms in per_photo.items()},
        "faces_per_photo": faces,
    }
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, "versus_fer": block}, indent=2) + "\n")
    print(json.dumps({k: v for k, v in block.items() if k != "per_photo_ms"}, indent=2))


def _fer_version(root: Path) -> str:
    found = sorted(root.glob("fer-*.dist-info"))
    return found[0].name.removeprefix("fer-").removesuffix(".dist-info") if found else "unknown"


if __name__ == "__main__":
    main()
