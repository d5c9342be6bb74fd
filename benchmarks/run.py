"""Speed of the zoo's models and of the demo's pipeline on this machine.

    python benchmarks/run.py [--photo PATH] [--out benchmarks/results.json]

Measures, per model: batch-1 latency (p50 / p95, in a traced function) and batched throughput on
48x48 faces; end to end for a 1024-px photo: decode + detect + classify with every model; and the
training input pipeline: throughput of a training step fed augmented batches versus cached tensors.
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


def bench_end_to_end(recognizer, photo: Path, runs: int) -> dict:
    import cv2

    from fer.faces import decode_image, detect_faces

    image = cv2.imread(str(photo))
    scale = 1024 / max(image.shape[:2])
    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    data = cv2.imencode(".jpg", image)[1].tobytes()
    rgb = decode_image(data)
    faces = len(detect_faces(rgb))
    return {
        "photo": f"{photo.name} resized to {image.shape[1]}x{image.shape[0]}, {faces} face(s)",
        "decode": percentiles(time_calls(lambda: decode_image(data), runs)),
        "detect": percentiles(time_calls(lambda: detect_faces(rgb), runs)),
        "all_models": percentiles(time_calls(lambda: recognizer.predict(data, models=list(recognizer.models)), runs)),
        **{f"{name}_only": percentiles(time_calls(lambda n=name: recognizer.predict(data, models=[n]), runs))
           for name in recognizer.models},
    }


def bench_input_pipeline(steps: int = 30) -> dict:
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
    for _ in range(2):  # alternate, so that neither pipeline gets the quieter moment
        for name, ds in pipelines.items():
            start = time.perf_counter()
            model.fit(ds, verbose=0)
            seconds[name].append(time.perf_counter() - start)
    result = {f"{name}_images_per_s": round(n / min(t), 1) for name, t in seconds.items()}
    result["augmented_vs_cached"] = round(result["augmented_images_per_s"] / result["cached_images_per_s"], 3)
    del tf
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="examples/fer2013_test_3_fear_disgust_happy_neutral.jpg",
                        help="photo for the end-to-end timing (resized to 1024 px on its longer side)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()

    import os

    from fer.inference import Recognizer

    recognizer = Recognizer.from_zoo()
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "models": bench_models(recognizer, args.runs),
        "end_to_end": bench_end_to_end(recognizer, Path(args.photo), args.runs),
        "input_pipeline": bench_input_pipeline(),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
