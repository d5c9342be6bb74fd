"""Images in, faces out: safe decoding, face detection and 48x48 crops.

    image bytes -> decode_image -> detect_faces (a detector from DETECTORS) -> crop_face (levelled by the eyes)
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fer.errors import DetectorError, ImageError
from fer.labels import IMAGE_SIZE

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm"})
"""File suffixes taken as images when a folder is scanned."""
MAX_PIXELS = 50_000_000
"""Images with more pixels than this are refused before decoding (decompression bombs)."""
MAX_SIDE = 1600
"""Larger images are downscaled to this longest side before detection: faces stay well above the
detector's minimum size and the cost of a request stays bounded."""


@dataclass(frozen=True)
class Box:
    """A face's bounding box in the (possibly downscaled) image, in pixels."""

    x: int
    y: int
    w: int
    h: int

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def to_dict(self) -> dict:
        return asdict(self)


def decode_image(source: bytes | str | os.PathLike | np.ndarray, max_pixels: int = MAX_PIXELS,
                 max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode an image into an RGB uint8 array, honouring EXIF rotation.

    Accepts bytes, a path or an array (gray, RGB or RGBA, any integer or float dtype). Handles 16-bit,
    palette, CMYK, RGBA and animated images (first frame). Raises ImageError for anything that is not a
    readable image or has more than ``max_pixels`` pixels; downscales to ``max_side``.
    """
    return load_image(source, max_pixels, max_side)[0]


def load_image(source: bytes | str | os.PathLike | np.ndarray, max_pixels: int = MAX_PIXELS,
               max_side: int = MAX_SIDE) -> tuple[np.ndarray, float]:
    """Like decode_image, and also the factor from the returned image's pixels to the original's."""
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source)
        original_width = rgb.shape[1]
    else:
        rgb, original_width = _decode_with_pillow(source, max_pixels)
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return rgb, original_width / rgb.shape[1]


def _decode_with_pillow(source, max_pixels: int) -> tuple[np.ndarray, int]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        if not (len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size):
            raise ImageError("The file is empty: upload a JPEG, PNG, WebP, BMP or GIF photo.")
        handle = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source))
        with handle as image:
            if image.width * image.height > max_pixels:
                raise ImageError(f"The image is {image.width}x{image.height} pixels, more than the "
                                 f"{max_pixels / 1e6:.0f} MP this demo accepts: downscale it first.")
            full_size = image.size
            if image.format == "JPEG" and max(image.size) > 2 * MAX_SIDE:
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode JPEGs at reduced size: much faster
            image.seek(0)  # first frame of animations
            # The width of the upright original, before any reduced-size JPEG decoding.
            original_width = full_size[1] if image.getexif().get(0x0112, 1) in (5, 6, 7, 8) else full_size[0]
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float64)
                top = array.max() if array.size else 1
                image = Image.fromarray((array * (255.0 / max(top, 1))).astype(np.uint8))
            if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy(), original_width
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"No such file: {source}") from None
    except UnidentifiedImageError:  # its message names a file object or a server path: not for people
        raise ImageError("Not a readable image: upload a JPEG, PNG, WebP, BMP or GIF photo.") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"Not a readable image ({e}): upload a JPEG, PNG, WebP, BMP or GIF photo.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"The image is corrupt or truncated ({e}): try another file.") from None


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise ImageError(f"Expected a gray, RGB or RGBA image array, got shape {array.shape}.")
    if array.size > MAX_PIXELS * 4:
        raise ImageError(f"The image array {array.shape} is larger than this demo accepts.")
    if array.dtype != np.uint8:
        a = np.nan_to_num(array.astype(np.float64))
        top = 1.0 if a.max(initial=0) <= 1.0 else (255.0 if a.max() <= 255 else a.max())
        array = np.clip(a * (255.0 / top), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    if array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255
        return (array[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(array)


# Detectors ---------------------------------------------------------------------------------------------

Point = tuple[float, float]


@dataclass(frozen=True)
class Detection:
    """One face a detector found: its square box in the working image's pixels, the detector's confidence
    (None for a detector that gives none, such as Haar) and the eye centres (image-left eye first) when the
    detector finds landmarks."""

    box: Box
    score: float | None = None
    eyes: tuple[Point, Point] | None = None


@dataclass(frozen=True)
class DetectorSpec:
    """A detector in the table: how to build it and the defaults it runs with.

    ``build()`` returns a callable ``(rgb, min_side) -> list[Detection]`` that finds faces at least
    ``min_side`` pixels wide; it is built once, on first use. Before detection the image is shrunk to
    ``detect_side`` pixels on its longer side (None: as given) and boxes are mapped back; detections scoring
    below ``min_score`` and faces smaller than ``min_face_fraction`` of the shorter side (and than
    ``min_face_pixels``) are dropped."""

    build: Callable[[], Callable[[np.ndarray, int], list[Detection]]]
    min_score: float | None
    min_face_fraction: float
    min_face_pixels: int
    detect_side: int | None
    landmarks: bool
    summary: str


def _square(x: float, y: float, w: float, h: float, width: int, height: int) -> Box:
    """The square box of side max(w, h) centred on a detection, moved (and if need be shrunk) into the
    image: the models were trained on square faces, and a stretched face is not one of them."""
    side = min(max(w, h), width, height)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(0.0, cx - side / 2), width - side)
    top = min(max(0.0, cy - side / 2), height - side)
    return Box(int(round(left)), int(round(top)), max(1, int(round(side))), max(1, int(round(side))))


def _build_haar():
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise DetectorError(f"Could not load the Haar cascade {path}: install opencv-python-headless<5.")

    def detect(rgb: np.ndarray, min_side: int) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side))
        return [Detection(Box(int(x), int(y), int(w), int(h))) for x, y, w, h in found]

    return detect


def _eager_mtcnn():
    """mtcnn's own MTCNN with the weights that ship inside the package, its networks called eagerly."""
    from fer.logs import quiet_tensorflow

    quiet_tensorflow()  # a no-op when an entry point already imported TensorFlow
    try:
        from importlib.resources import files

        from mtcnn import MTCNN
        from mtcnn.stages import StageONet, StagePNet, StageRNet
    except ImportError:
        raise DetectorError("The mtcnn detector needs the mtcnn package (pip install -r requirements.txt), "
                            "or choose another detector: " + ", ".join(DETECTORS) + ".") from None
    # The weights ship inside the package; named by full path so that a file of the same name in the
    # working directory is never loaded instead (mtcnn looks there first).
    weights = files("mtcnn.assets.weights")
    return MTCNN(stages=[StagePNet(weights=str(weights / "pnet.lz4")), StageRNet(weights=str(weights / "rnet.lz4")),
                         StageONet(weights=str(weights / "onet.lz4"))])


def _build_mtcnn():
    mtcnn = _trace_networks(_eager_mtcnn())
    threshold = DETECTORS["mtcnn"].min_score

    def detect(rgb: np.ndarray, min_side: int) -> list[Detection]:
        # min_face_size stays at mtcnn's 20: in mtcnn 1.0.0 a larger one drops the scales that find the
        # LARGEST faces (build_scale_pyramid counts its levels as if it were 12), so small faces are
        # dropped afterwards, in detect_faces.
        height, width = rgb.shape[:2]
        found = mtcnn.detect_faces(rgb, min_face_size=min(20, min_side), threshold_onet=threshold)
        return [Detection(_square(*f["box"], width, height), float(f["confidence"]),
                          (tuple(map(float, f["keypoints"]["left_eye"])), tuple(map(float, f["keypoints"]["right_eye"]))))
                for f in found]

    return detect


def _trace_networks(mtcnn):
    """Run each MTCNN stage's network as one traced TensorFlow function, not layer by layer eagerly.

    mtcnn 1.0.0 calls its Keras networks eagerly, once per pyramid scale (about 11 for the working size)
    and once per later stage, and eager dispatch is most of what a photo costs: tracing made detection about
    2x faster on this project's CPU with the same boxes and scores (tests/test_faces.py). One trace per
    network: any batch, height and width, traced here (on its input size: 12, 24 and 48 px) so that the first
    photo does not wait for it. ``_model`` is mtcnn's own attribute (pinned in requirements.txt).
    """
    import tensorflow as tf

    signature = [tf.TensorSpec([None, None, None, 3], tf.float32)]
    for stage, side in zip(mtcnn.stages, (12, 24, 48), strict=True):
        stage._model = tf.function(stage._model, input_signature=signature)
        stage._model(tf.zeros([1, side, side, 3]))
    return mtcnn


DETECTORS: dict[str, DetectorSpec] = {
    "mtcnn": DetectorSpec(
        _build_mtcnn, min_score=0.9, min_face_fraction=0.05, min_face_pixels=20, detect_side=640, landmarks=True,
        summary="MTCNN (PyPI mtcnn, TensorFlow; weights ship in the package): box, confidence, eyes. Accurate, "
                "levels tilted faces."),
    "haar": DetectorSpec(
        _build_haar, min_score=None, min_face_fraction=0.08, min_face_pixels=24, detect_side=None, landmarks=False,
        summary="OpenCV's frontal-face Haar cascade (ships with opencv-python): box only. Fast; misses tilted "
                "and profile faces."),
}
"""Every face detector by name: ``--detector`` in the CLI, the app's dropdown and the API take these names."""
DEFAULT_DETECTOR = "mtcnn"

_built: dict[str, Callable[[np.ndarray, int], list[Detection]]] = {}
_build_lock = threading.Lock()


def detector_spec(name: str) -> DetectorSpec:
    """The table entry of detector ``name``; DetectorError naming the valid ones for any other name."""
    if name not in DETECTORS:
        raise DetectorError(f"Unknown face detector {name!r}: choose one of {', '.join(DETECTORS)}.")
    return DETECTORS[name]


def load_detector(name: str) -> Callable[[np.ndarray, int], list[Detection]]:
    """Detector ``name``, built on the first call and kept for the process (the app builds its default at
    start-up so that the first request does not wait for it)."""
    spec = detector_spec(name)
    with _build_lock:  # built once per process, on first use (two app workers may ask at once)
        if name not in _built:
            _built[name] = spec.build()
        return _built[name]


def detect_faces(rgb: np.ndarray, detector: str = DEFAULT_DETECTOR, max_faces: int = 20,
                 detect_side: int | None = None) -> list[Detection]:
    """Faces in an RGB image, largest first, found by ``detector`` (a name in DETECTORS) with its defaults;
    boxes, eyes and scores refer to ``rgb``'s pixels whatever size the detector ran at. ``detect_side``
    overrides the detector's own working size (fer.video shrinks frames further for speed)."""
    spec = detector_spec(detector)
    height, width = rgb.shape[:2]
    detect_side = detect_side or spec.detect_side
    scale = min(1.0, detect_side / max(height, width)) if detect_side else 1.0
    small = rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                                                interpolation=cv2.INTER_AREA)
    min_side = max(spec.min_face_pixels, int(spec.min_face_fraction * min(small.shape[:2])))
    if min(small.shape[:2]) < min_side:
        return []
    found = [d for d in load_detector(detector)(small, min_side)
             if min(d.box.w, d.box.h) >= min_side and (spec.min_score is None or d.score >= spec.min_score)]
    if scale != 1.0:
        found = [_scaled(d, 1 / scale, width, height) for d in found]
    found.sort(key=lambda d: d.box.w * d.box.h, reverse=True)
    return found[:max_faces]


def _scaled(d: Detection, factor: float, width: int, height: int) -> Detection:
    b = d.box
    box = _square(b.x * factor, b.y * factor, b.w * factor, b.h * factor, width, height)
    eyes = tuple((x * factor, y * factor) for x, y in d.eyes) if d.eyes else None
    return Detection(box, d.score, eyes)


def reading_order(faces: list) -> list:
    """Boxes (or Detections) as a person reads them: rows top to bottom, left to right within a row. Two
    faces share a row when their vertical centres lie within half the smaller face's height of each other."""
    def box(item) -> Box:
        return item.box if isinstance(item, Detection) else item

    rows: list[list] = []
    for face in sorted(faces, key=lambda f: box(f).y + box(f).h / 2):
        row = rows[-1] if rows else None
        first = box(row[0]) if row else None
        if row and abs((box(face).y + box(face).h / 2) - (first.y + first.h / 2)) <= min(box(face).h, first.h) / 2:
            row.append(face)
        else:
            rows.append([face])
    return [face for row in rows for face in sorted(row, key=lambda f: box(f).x)]


def eye_angle(eyes: tuple[Point, Point]) -> float:
    """Degrees the face is turned clockwise on screen: the slope of the line from the image-left eye to the
    image-right eye (0 when they are level)."""
    (lx, ly), (rx, ry) = sorted(eyes)
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def crop_face(rgb: np.ndarray, box: Box | None = None, eyes: tuple[Point, Point] | None = None) -> np.ndarray:
    """The 48x48 grayscale face (uint8) the models take; the whole image when ``box`` is None. With ``eyes``
    the face is first turned about the box's centre until the eyes are level (FER-2013 faces are upright)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    if box is not None and eyes is not None:
        gray, box = _levelled(gray, box, eye_angle(eyes))
    if box is not None:
        gray = gray[max(0, box.y):box.y + box.h, max(0, box.x):box.x + box.w]
    if gray.size == 0:
        raise ImageError("The face box lies outside the image.")
    interpolation = cv2.INTER_AREA if min(gray.shape) >= IMAGE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interpolation)


def _levelled(gray: np.ndarray, box: Box, angle: float) -> tuple[np.ndarray, Box]:
    """The patch around ``box`` turned by ``angle`` degrees about the box's centre, and the box in it.
    Only a patch the size of the box's diagonal is rotated (at full resolution, so the final resize can
    still average pixels); what lies outside the image is filled by repeating its edge."""
    if abs(angle) < 1.0:
        return gray, box
    side = int(np.ceil(np.hypot(box.w, box.h))) + 2
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    rotation[:, 2] += (side / 2 - cx, side / 2 - cy)  # the box's centre lands in the patch's centre
    patch = cv2.warpAffine(gray, rotation, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return patch, Box(int(round(side / 2 - box.w / 2)), int(round(side / 2 - box.h / 2)), box.w, box.h)
