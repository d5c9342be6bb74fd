"""Speed of the zoo's models and of the demo's pipeline on this machine.

    python benchmarks/run.py [--photo PATH] [--out benchmarks/results.json]
    python benchmarks/run.py --parts detectors [--photos ../shared/photos]   # only some blocks of --out

Measures, per model: batch-1 latency (p50 / p95, in a traced function) and batched throughput on
48x48 faces; end to end for a 1024-px photo with one face (the largest face of --photo with its
surroundings): decode + detect (each detector) + classify with every model; per face detector, the faces
found and ms per photo on real photos (--photos) at the app's working size; and the training input pipeline:
throughput of a training step fed augmented batches versus cached tensors.

Architectures that have no zoo entry yet are timed as untrained stand-ins with the same 10-view
test-time augmentation (speed does not depend on the weights), named "<architecture> (stand-in)";
--no-stand-ins leaves them out. Results are merged into --out (benchmarks/load.py adds "load").
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere: python benchmarks/run.py


def percentiles(times: list[float]) -> dict:
    ms = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def time_calls(fn, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_models(recognizer, runs: int) -> dict:
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, 48, 48), dtype=np.uint8)
    batch = rng.integers(0, 256, (256, 48, 48), dtype=np.uint8)
    out = {}
    for name in recognizer.models:
        latency = percentiles(time_calls(lambda n=name: recognizer.score_crops(one, [n]), runs))
        seconds = min(time_calls(lambda n=name: recognizer.score_crops(batch, [n]), 3, warmup=1))
        out[name] = {**latency, "throughput_faces_per_s": round(len(batch) / seconds, 1)}
    return out


def one_face_photo(photo: Path, side: int = 1024) -> bytes:
    """JPEG bytes of a ``side``-px photo with one face: the largest face of ``photo`` and its surroundings."""
    import cv2

    from fer.faces import decode_image, detect_faces

    rgb = decode_image(photo.read_bytes())
    faces = detect_faces(rgb)
    if not faces:
        raise SystemExit(f"No face found in {photo}: pass --photo with a face in it.")
    f = faces[0].box
    x0, y0 = max(0, f.x - f.w), max(0, f.y - f.h)
    crop = rgb[y0:f.y + 2 * f.h, x0:f.x + 2 * f.w]
    scale = side / max(crop.shape[:2])
    crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def bench_end_to_end(recognizer, photo: Path, runs: int) -> dict:
    from fer.faces import DEFAULT_DETECTOR, DETECTORS, crop_face, decode_image, detect_faces

    data = one_face_photo(photo)
    rgb = decode_image(data)
    found = detect_faces(rgb)

    def classify(names):  # what a photo costs after detection: crops (levelled) and scores
        return recognizer.score_crops([crop_face(rgb, d.box, d.eyes) for d in found], names)

    return {
        "photo": f"largest face of {photo.name} with its surroundings, {rgb.shape[1]}x{rgb.shape[0]}, "
                 f"{len(found)} face(s) found by {DEFAULT_DETECTOR}",
        "detector": DEFAULT_DETECTOR,
        "decode": percentiles(time_calls(lambda: decode_image(data), runs)),
        **{f"detect_{name}": percentiles(time_calls(lambda n=name: detect_faces(rgb, n), runs)) for name in DETECTORS},
        **{f"classify_{name}": percentiles(time_calls(lambda n=name: classify([n]), runs))
           for name in recognizer.models},
        "all_models": percentiles(time_calls(lambda: recognizer.predict(data, models=list(recognizer.models)), runs)),
        **{f"{name}_only": percentiles(time_calls(lambda n=name: recognizer.predict(data, models=[n]), runs))
           for name in recognizer.models},
    }


def bench_detectors(photos: Path, rounds: int = 3) -> dict:
    """Per detector: the faces it finds in each photo of ``photos`` and ms per photo at the app's working size
    (decoded and shrunk to fer.faces.MAX_SIDE, as the app does; the detector shrinks further if its table entry
    says so). The detectors alternate photo by photo, ``rounds`` times, so that neither gets the quieter moment."""
    from fer.faces import DETECTORS, MAX_SIDE, decode_image, detect_faces

    images = {p.name: decode_image(p) for p in sorted(photos.glob("*.jpg"))}
    if not images:
        raise SystemExit(f"No .jpg photos in {photos}: pass --photos.")
    first = next(iter(images.values()))
    for name in DETECTORS:  # build each detector and trace its first call outside the timing
        detect_faces(first, name)
    times: dict[str, list[float]] = {name: [] for name in DETECTORS}
    faces: dict[str, dict[str, int]] = {name: {} for name in DETECTORS}
    for _ in range(rounds):
        for photo, rgb in images.items():
            for name in DETECTORS:
                start = time.perf_counter()
                found = detect_faces(rgb, name)
                times[name].append(time.perf_counter() - start)
                faces[name][photo] = len(found)
    out = {}
    for name, spec in DETECTORS.items():
        one_person = {p: n for p, n in faces[name].items() if p != "couple.jpg"}
        out[name] = {**percentiles(times[name]), "min_score": spec.min_score, "min_face_fraction": spec.min_face_fraction,
                     "detect_side": spec.detect_side,
                     "one_person_photos_with_exactly_one_face": f"{sum(n == 1 for n in one_person.values())}/{len(one_person)}",
                     "faces_per_photo": faces[name]}
    return {"photos": f"{len(images)} photos of {photos}, working size at most {MAX_SIDE} px a side",
            "rounds": rounds, **out}


def bench_tflite(models: dict, runs: int) -> dict:
    """Batch-1 latency of each model exported to TensorFlow Lite (float32), beside the traced Keras call."""
    import tempfile

    from fer.lite import LiteModel, export_tflite
    from fer.models import traced_inference

    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48, 1)).astype(np.float32)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            lite = LiteModel(export_tflite(model, Path(tmp) / "model.tflite"))
            keras_fn = traced_inference(model)
            keras_ms = percentiles(time_calls(lambda f=keras_fn: np.asarray(f(face)), runs))
            lite_ms = percentiles(time_calls(lambda m=lite: m(face), runs))
            out[name] = {"keras": keras_ms, "tflite": lite_ms,
                         "speedup_p50": round(keras_ms["p50_ms"] / lite_ms["p50_ms"], 2),
                         "max_score_difference": float(np.abs(lite(face) - np.asarray(keras_fn(face))).max())}
    return out


def stand_ins(zoo_architectures: set[str]) -> dict:
    """Untrained models, with 10-view TTA, for the architectures the zoo lacks (timing only)."""
    from fer.models import ARCHITECTURES, build_model, with_tta

    return {f"{arch} (stand-in)": with_tta(build_model(arch), "flip_shift")
            for arch in ARCHITECTURES if arch not in zoo_architectures}


def bench_input_pipeline(steps: int = 40, rounds: int = 4) -> dict:
    """Best of ``rounds`` alternating epochs each: this shared 2-core machine has slow spells of seconds."""
    import keras
    import tensorflow as tf

    from fer.augment import AugmentConfig, build_augmenter
    from fer.models import build_model
    from fer.training import make_dataset

    rng = np.random.default_rng(0)
    n = 64 * steps
    x, y = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n)
    model = build_model("custom_cnn")
    model.compile(keras.optimizers.AdamW(1e-3), "categorical_crossentropy", jit_compile=False)
    cached = make_dataset(x, y, 64).cache()
    for _ in cached:  # fill the cache
        pass
    augmented = make_dataset(x, y, 64, augmenter=build_augmenter(AugmentConfig()), shuffle=True)
    pipelines = {"cached": cached, "augmented": augmented}
    for ds in pipelines.values():  # trace the step and warm both pipelines before timing
        model.fit(ds.take(3), verbose=0)
    seconds = {name: [] for name in pipelines}
    for _ in range(rounds):  # alternate, so that neither pipeline gets the quieter moment; best of each
        for name, ds in pipelines.items():
            start = time.perf_counter()
            model.fit(ds, verbose=0)
            seconds[name].append(time.perf_counter() - start)
    result = {f"{name}_images_per_s": round(n / min(t), 1) for name, t in seconds.items()}
    result["augmented_vs_cached"] = round(result["augmented_images_per_s"] / result["cached_images_per_s"], 3)
    del tf
    return result


PARTS = ("models", "end_to_end", "detectors", "tflite", "input_pipeline")  # the blocks main() can measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="examples/fer2013_test_3_fear_disgust_happy_neutral.jpg",
                        help="photo for the end-to-end timing (resized to 1024 px on its longer side)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-stand-ins", action="store_true",
                        help="time only the zoo's models, not untrained stand-ins for missing architectures")
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--photos", default="../shared/photos", help="real photos for the detector timings")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated blocks of --out to measure (default: all of {', '.join(PARTS)})")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown --parts {', '.join(sorted(unknown))}: choose from {', '.join(PARTS)}")

    import os

    from fer.logs import quiet_tensorflow

    quiet_tensorflow()
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    recognizer = zoo_models = None
    if {"models", "end_to_end", "tflite"} & set(parts):  # the parts that score faces load the zoo
        from fer.inference import Recognizer
        from fer.zoo import list_entries

        recognizer = Recognizer.from_zoo()
        zoo_models = dict(recognizer.models)
        if not args.no_stand_ins:
            architectures = {e.architecture for e in list_entries()}
            recognizer = Recognizer({**recognizer.models, **stand_ins(architectures)})
    measure = {
        "models": lambda: bench_models(recognizer, args.runs),
        "end_to_end": lambda: bench_end_to_end(recognizer, Path(args.photo), args.runs),
        "detectors": lambda: bench_detectors(Path(args.photos)),
        "tflite": lambda: bench_tflite(zoo_models, args.runs),
        "input_pipeline": bench_input_pipeline,
    }
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "python": platform.python_version()},
               **{part: measure[part]() for part in PARTS if part in parts}}
    out.write_text(json.dumps({**previous, **results}, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
