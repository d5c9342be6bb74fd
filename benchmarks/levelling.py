"""Face levelling measured: real photos turned by ±15° and ±30°, faces found and labels kept, per detector.

    python benchmarks/levelling.py [--photos ../shared/photos] [--model custom_cnn] [--out benchmarks/results.json]

For every one-person photo (img*.jpg) and every angle, each detector looks for faces in the turned photo
(PIL, bicubic, canvas expanded, corners filled with grey); the face is scored by --model with its crop
levelled by the eyes and without. "found" counts photos where exactly one face was found; "agree" counts,
among those, photos whose top emotion equals the top emotion of the same photo upright (same detector,
same levelling setting, found exactly one face there too). A detector without eye landmarks (Haar) cannot
level: it has one row. Results go to the "levelling" block of --out; a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

ANGLES = (-30, -15, 15, 30)


def turned(image, angle: float) -> np.ndarray:
    from PIL import Image

    return np.asarray(image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="../shared/photos")
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()

    from fer.logs import quiet_tensorflow

    quiet_tensorflow()
    from PIL import Image

    from fer.faces import DETECTORS, crop_face, decode_image, detect_faces
    from fer.inference import Recognizer
    from fer.labels import EMOTIONS

    recognizer = Recognizer.from_zoo(names=[args.model])
    photos = sorted(Path(args.photos).glob("img*.jpg"))
    # top[detector][level][angle][photo]: the top emotion, or None when not exactly one face was found
    top: dict = {d: {lv: {a: {} for a in (0, *ANGLES)} for lv in (True, False)} for d in DETECTORS}
    for photo in photos:
        upright = Image.fromarray(decode_image(photo))
        for angle in (0, *ANGLES):
            rgb = turned(upright, angle) if angle else np.asarray(upright)
            for detector in DETECTORS:
                found = detect_faces(rgb, detector)
                for level in (True, False):
                    if len(found) != 1:
                        top[detector][level][angle][photo.name] = None
                        continue
                    d = found[0]
                    crop = crop_face(rgb, d.box, d.eyes if level else None)
                    probs = recognizer.score_crops(crop[None], [args.model])[args.model][0]
                    top[detector][level][angle][photo.name] = EMOTIONS[int(np.argmax(probs))]
    rows, block = [], {"photos": f"{len(photos)} one-person photos of {args.photos}", "model": args.model,
                       "angles": list(ANGLES), "rows": []}
    for detector, spec in DETECTORS.items():
        for level in ((True, False) if spec.landmarks else (False,)):
            cells = {}
            for angle in ANGLES:
                now, base = top[detector][level][angle], top[detector][level][0]
                found = [p for p, label in now.items() if label is not None]
                agree = [p for p in found if base.get(p) is not None and now[p] == base[p]]
                comparable = [p for p in found if base.get(p) is not None]
                cells[angle] = {"found": len(found), "agree": len(agree), "comparable": len(comparable)}
            block["rows"].append({"detector": detector, "levelled": level,
                                  "upright_found": sum(v is not None for v in top[detector][level][0].values()),
                                  "by_angle": cells})
            rows.append(f"| `{detector}` | {'yes' if level else 'no (no eyes)' if not spec.landmarks else 'no'} | "
                        + " | ".join(f"{c['found']}/{len(photos)}" for c in cells.values()) + " | "
                        + " | ".join(f"{c['agree']}/{c['comparable']}" for c in cells.values()) + " |")
    header = ("| detector | levelled | " + " | ".join(f"found {a:+d}°" for a in ANGLES) + " | "
              + " | ".join(f"agree {a:+d}°" for a in ANGLES) + " |")
    print("\n".join([header, "|" + "---|" * (2 + 2 * len(ANGLES)), *rows]))
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, "levelling": block}, indent=2) + "\n")


if __name__ == "__main__":
    main()
