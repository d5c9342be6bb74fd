"""Decoding hostile images, detecting faces on real photos, cropping like the training data."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS, needs_photos
from fer.errors import ImageError
from fer.faces import Box, crop_face, decode_image, detect_faces


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


RGB = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))


@pytest.mark.parametrize("make", [
    lambda: _encode(RGB, "PNG"),
    lambda: _encode(RGB.convert("RGBA"), "PNG"),
    lambda: _encode(RGB.convert("P"), "PNG"),
    lambda: _encode(RGB.convert("L"), "JPEG"),
    lambda: _encode(RGB.convert("CMYK"), "JPEG"),
    lambda: _encode(Image.fromarray(np.full((40, 60), 40000, np.uint16)), "PNG"),
    lambda: _encode(RGB, "GIF", save_all=True, append_images=[RGB.rotate(90)]),
    lambda: _encode(RGB, "WEBP"),
    lambda: _encode(RGB, "BMP"),
], ids=["png", "rgba", "palette", "gray", "cmyk", "16bit", "animated-gif", "webp", "bmp"])
def test_decodes_every_common_mode_to_rgb(make):
    rgb = decode_image(make())
    assert rgb.dtype == np.uint8 and rgb.shape == (40, 60, 3)


def test_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    rgb = decode_image(_encode(RGB, "JPEG", exif=exif.tobytes()))
    assert rgb.shape == (60, 40, 3)


@pytest.mark.parametrize("data, match", [
    (b"", "empty"),
    (b"hello, I am text", "Not a readable image"),
    (_encode(RGB, "PNG")[:60], "corrupt|truncated|readable"),
])
def test_bad_files_raise_image_error(data, match):
    with pytest.raises(ImageError, match=match):
        decode_image(data)


def test_huge_images_are_refused_before_decoding():
    header_only = _encode(Image.new("L", (12000, 12000)), "PNG")
    with pytest.raises(ImageError, match="MP"):
        decode_image(header_only, max_pixels=100_000_000 // 2)


def test_large_images_are_downscaled_and_tiny_ones_kept():
    big = decode_image(np.zeros((3000, 2000, 3), np.uint8))
    assert max(big.shape[:2]) == 1600
    tiny = decode_image(np.zeros((10, 10), np.uint8))
    assert tiny.shape == (10, 10, 3)
    assert detect_faces(tiny) == []
    assert crop_face(tiny).shape == (48, 48)


def test_crop_is_48x48_gray_of_the_box():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[10:60, 20:70] = 255
    crop = crop_face(rgb, Box(20, 10, 50, 50))
    assert crop.shape == (48, 48) and crop.min() == 255


@needs_photos
def test_every_shared_photo_has_a_face_and_couple_has_two():
    counts = {p.name: len(detect_faces(decode_image(p))) for p in sorted(PHOTOS.glob("*.jpg"))}
    assert len(counts) >= 20
    assert all(n >= 1 for n in counts.values()), counts
    assert counts["couple.jpg"] == 2


def test_scale_maps_working_pixels_back_to_the_original():
    from fer.faces import load_image

    rgb, scale = load_image(np.zeros((2000, 3200, 3), np.uint8))
    assert rgb.shape[:2] == (1000, 1600) and scale == 2.0
    big = Image.new("RGB", (4000, 3000), "gray")
    rgb, scale = load_image(_encode(big, "JPEG"))  # decoded at reduced size by JPEG draft mode
    assert rgb.shape[:2] == (1200, 1600) and scale == pytest.approx(2.5)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb, scale = load_image(_encode(big, "JPEG", exif=exif.tobytes()))
    assert rgb.shape[:2] == (1600, 1200) and scale == pytest.approx(2.5)


def test_faces_are_numbered_in_reading_order():
    from fer.faces import Box, reading_order

    # Two rows: a big face top right, a small one top left a little lower; one face below.
    top_right, top_left, bottom = Box(300, 40, 120, 120), Box(20, 70, 60, 60), Box(150, 300, 80, 80)
    assert reading_order([top_right, bottom, top_left]) == [top_left, top_right, bottom]
    assert reading_order([]) == []
