"""Compose the demo's example photos from FER-2013 test faces.

    python scripts/make_examples.py --data ../shared/fer2013 --out examples

Each example is a grid of test faces (one per emotion, chosen with a fixed seed), upscaled and set on
a padded background so that the face detector finds them as it would in a photo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere: python scripts/make_examples.py

from fer.data import load_eval_split  # noqa: E402
from fer.faces import decode_image, detect_faces  # noqa: E402
from fer.labels import EMOTIONS  # noqa: E402

CELL = 220  # pixels per face cell
FACE = 150  # face size inside a cell


def compose(faces: list[np.ndarray], columns: int) -> np.ndarray:
    rows = -(-len(faces) // columns)
    canvas = np.full((rows * CELL, columns * CELL), 235, np.uint8)
    for i, face in enumerate(faces):
        r, c = divmod(i, columns)
        y, x = r * CELL + (CELL - FACE) // 2, c * CELL + (CELL - FACE) // 2
        canvas[y:y + FACE, x:x + FACE] = cv2.resize(face, (FACE, FACE), interpolation=cv2.INTER_CUBIC)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/fer2013")
    parser.add_argument("--out", default="examples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    split = load_eval_split(args.data)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    wanted = [("happy", "surprise"), ("angry", "sad", "neutral"), ("fear", "disgust", "happy", "neutral")]
    for n, emotions in enumerate(wanted, start=1):
        columns = len(emotions) if len(emotions) <= 3 else 2
        faces: list[np.ndarray] = []
        for emotion in emotions:
            # Take seeded candidates until the detector finds every face of the grid so far.
            for idx in rng.permutation(np.flatnonzero(split.labels == EMOTIONS.index(emotion))):
                trial = faces + [split.images[idx]]
                if len(detect_faces(decode_image(compose(trial, columns)))) == len(trial):
                    faces = trial
                    break
        image = compose(faces, columns)
        path = out / f"fer2013_test_{n}_{'_'.join(emotions)}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        print(f"{path}: {len(detect_faces(decode_image(path)))} faces detected of {len(faces)}")


if __name__ == "__main__":
    main()
