"""Speed of video analysis: sampled frames processed per second at 640x480, every frame sampled.

    python benchmarks/video.py [--photos ../shared/photos] [--model custom_cnn] [--out benchmarks/results.json]

The clip is made here from real photos (no download): each shot pastes one photo's face over that photo's
blurred background and moves and scales it across the frame; shots cut from one photo to the next. Each
setting (detector, detect every k-th frame) runs ``--rounds`` times over the whole clip after one untimed
warm-up; the median wall time gives frames per second, from the first frame read to the last face scored
(models loaded beforehand, as in the app). The result is merged into --out under "video".

The same clip builder serves tests/test_video.py (``Shot``, ``render_shots``, ``write_clip``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere: python benchmarks/video.py


@dataclass(frozen=True)
class Shot:
    """``frames`` frames of one photo's face over its blurred background: the face's centre moves from
    ``start`` to ``end`` (fractions of the frame's width and height) while its side grows from ``scale[0]`` to
    ``scale[1]`` of the frame's height."""

    photo: Path
    frames: int
    start: tuple[float, float] = (0.35, 0.45)
    end: tuple[float, float] = (0.65, 0.55)
    scale: tuple[float, float] = (0.4, 0.55)


def face_patch(photo: Path) -> tuple[np.ndarray, np.ndarray]:
    """The photo's largest face with a margin of 30% a side (found by Haar, no TensorFlow needed), and the
    photo itself, RGB."""
    from fer.faces import decode_image, detect_faces

    rgb = decode_image(photo)
    found = detect_faces(rgb, "haar")
    if not found:
        raise SystemExit(f"No face found in {photo}: choose photos with a frontal face.")
    b = found[0].box
    m = int(0.3 * b.w)
    return rgb[max(0, b.y - m):b.y + b.h + m, max(0, b.x - m):b.x + b.w + m], rgb


def render_shots(shots: list[Shot], size: tuple[int, int] = (640, 480)) -> Iterator[np.ndarray]:
    """The clip's RGB frames, shot after shot."""
    width, height = size
    for shot in shots:
        patch, rgb = face_patch(shot.photo)
        background = cv2.resize(cv2.GaussianBlur(rgb, (0, 0), 25), size, interpolation=cv2.INTER_AREA)
        for i in range(shot.frames):
            t = i / max(1, shot.frames - 1)
            side = int(height * (shot.scale[0] + t * (shot.scale[1] - shot.scale[0])))
            cx = width * (shot.start[0] + t * (shot.end[0] - shot.start[0]))
            cy = height * (shot.start[1] + t * (shot.end[1] - shot.start[1]))
            x = int(min(max(0, cx - side / 2), width - side))
            y = int(min(max(0, cy - side / 2), height - side))
            frame = background.copy()
            frame[y:y + side, x:x + side] = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
            yield frame


def write_clip(path: Path, frames: Iterator[np.ndarray], fps: float = 25.0) -> Path:
    """RGB frames as an MPEG-4 Part 2 video (mp4v: every OpenCV build writes it)."""
    writer = None
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0]))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


BENCH_PHOTOS = ["img5.jpg", "img2.jpg", "img16.jpg", "img11.jpg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "photos"))
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--frames-per-shot", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--note", default="", help="what else ran on the machine, recorded with the result")
    args = parser.parse_args()

    from fer.logs import quiet_tensorflow

    quiet_tensorflow()
    from fer.faces import load_detector
    from fer.inference import Recognizer
    from fer.video import analyze_video

    shots = [Shot(Path(args.photos) / name, args.frames_per_shot) for name in BENCH_PHOTOS]
    recognizer = Recognizer.from_zoo(names=[args.model])
    settings = [("haar", 1), ("haar", 3), ("mtcnn", 1), ("mtcnn", 5)]
    block = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "bench.mp4", render_shots(shots))
        for detector, detect_every in settings:
            load_detector(detector)
            def run(detector=detector, detect_every=detect_every):
                return analyze_video(clip, recognizer, args.model, every=1, detector=detector, detect_every=detect_every)

            result = run()  # warm-up
            walls = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                result = run()
                walls.append(time.perf_counter() - start)
            wall = float(np.median(walls))
            frames = len(result.frames)
            key = f"{detector}, detect every {detect_every}"
            block[key] = {"frames_per_s": round(frames / wall, 1), "ms_per_frame": round(1000 * wall / frames, 1),
                          "walls_s": [round(w, 2) for w in walls], "faces": len(result.face_ids),
                          "rows": len(result.samples), "cuts": len(result.cuts)}
            print(f"{key:24s} {block[key]['frames_per_s']:6.1f} frames/s  faces {len(result.face_ids)}  "
                  f"rows {len(result.samples)}/{frames}", flush=True)
    block = {"clip": f"{len(shots) * args.frames_per_shot} frames, 640x480, 25 fps, mp4v; shots of "
                     f"{', '.join(BENCH_PHOTOS)} (face moving and growing, cut between shots)",
             "model": args.model, "sampling": "every frame", "machine": f"{platform.machine()}, 2 CPU cores",
             "command": "python benchmarks/video.py", "note": args.note, "settings": block}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, "video": block}, indent=2) + "\n")


if __name__ == "__main__":
    main()
