"""Images in, faces out: safe decoding, face detection and 48x48 crops.

    image bytes -> decode_image -> detect_faces -> crop_face
"""

from __future__ import annotations

import io
import os
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


_detector = None


def _haar_detector():
    global _detector
    if _detector is None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        detector = cv2.CascadeClassifier(str(path))
        if detector.empty():
            raise DetectorError(f"Could not load the Haar cascade {path}: install opencv-python-headless<5.")
        _detector = detector
    return _detector


MIN_FACE_FRACTION = 0.08
"""Faces smaller than this fraction of the image's shorter side are ignored: smaller windows bring
more false detections than real faces in photos of people."""


def detect_faces(rgb: np.ndarray, max_faces: int = 20, min_face_fraction: float = MIN_FACE_FRACTION) -> list[Box]:
    """Faces in an RGB image, largest first (OpenCV's Haar cascade, shipped with opencv-python)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    min_side = max(24, int(min_face_fraction * min(h, w)))
    if min(h, w) < min_side:
        return []
    found = _haar_detector().detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=6,
                                              minSize=(min_side, min_side))
    boxes = [Box(int(x), int(y), int(bw), int(bh)) for x, y, bw, bh in found]
    boxes.sort(key=lambda b: b.w * b.h, reverse=True)
    return boxes[:max_faces]


def reading_order(boxes: list[Box]) -> list[Box]:
    """Boxes as a person reads them: rows top to bottom, left to right within a row. Two faces share a
    row when their vertical centres lie within half the smaller face's height of each other."""
    rows: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: b.y + b.h / 2):
        row = rows[-1] if rows else None
        if row and abs((box.y + box.h / 2) - (row[0].y + row[0].h / 2)) <= min(box.h, row[0].h) / 2:
            row.append(box)
        else:
            rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda b: b.x)]


def crop_face(rgb: np.ndarray, box: Box | None = None) -> np.ndarray:
    """The 48x48 grayscale face (uint8) the models take; the whole image when ``box`` is None."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    if box is not None:
        gray = gray[max(0, box.y):box.y + box.h, max(0, box.x):box.x + box.w]
    if gray.size == 0:
        raise ImageError("The face box lies outside the image.")
    interpolation = cv2.INTER_AREA if min(gray.shape) >= IMAGE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interpolation)
